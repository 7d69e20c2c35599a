// SPDX-License-Identifier: GPL-2.0
/*
 * Datagrams queued in UDP sockets and not read before the dump come back
 * in order, whole, with their senders' addresses: an IPv4 socket on
 * 127.0.0.1 with datagrams from two senders (one of 1 byte, one of 60000),
 * an IPv6 one on ::1, a dual-stack one on the wildcard with one sent over
 * IPv4, and a connected one holding a datagram from a sender other than
 * its peer (queued before connect()). A queue peeked by the task keeps
 * its place. The senders still work. Each receiver's buffer size and its
 * lock (SO_BUF_LOCK) are as before: the forging of the queue grows the
 * buffer for a while, which must not leave a default size locked.
 *
 * Built with -DUDPLITE it is inet_udplite_queue: the same over UDP-Lite,
 * the second sender covering only part of its datagrams by the checksum.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "zdtm.h"

#ifdef UDPLITE
#define PROTO IPPROTO_UDPLITE
#ifndef UDPLITE_SEND_CSCOV
#define UDPLITE_SEND_CSCOV 10
#endif
#else
#define PROTO 0
#endif

#define BIG 60000
#ifndef SO_BUF_LOCK
#define SO_BUF_LOCK 72
#endif
static char big[BIG];

/* @fd's receive buffer size and its lock bits (-1: no SO_BUF_LOCK here). */
static void rcvbuf_state(int fd, int st[2])
{
	socklen_t l = sizeof(int);

	if (getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &st[0], &l))
		st[0] = -1;
	l = sizeof(int);
	if (getsockopt(fd, SOL_SOCKET, SO_BUF_LOCK, &st[1], &l))
		st[1] = -1;
}

static int bound(int family, const char *addr, struct sockaddr_storage *ss)
{
	socklen_t len = sizeof(*ss);
	int fd = socket(family, SOCK_DGRAM, PROTO);

	memset(ss, 0, sizeof(*ss));
	ss->ss_family = family;
	if (family == AF_INET)
		inet_pton(AF_INET, addr, &((struct sockaddr_in *)ss)->sin_addr);
	else
		inet_pton(AF_INET6, addr, &((struct sockaddr_in6 *)ss)->sin6_addr);
	if (fd < 0 || bind(fd, (void *)ss, sizeof(*ss)) || getsockname(fd, (void *)ss, &len))
		return -1;
	return fd;
}

static int send_to(int fd, const void *msg, size_t len, const struct sockaddr_storage *to)
{
	return sendto(fd, msg, len, 0, (void *)to, sizeof(*to)) == (ssize_t)len ? 0 : -1;
}

/* The next datagram of @fd is @msg (@len bytes) from @from's port. */
static int expect(int fd, const void *msg, size_t len, const struct sockaddr_storage *from)
{
	static char buf[BIG + 1];
	struct sockaddr_storage ss = {};
	socklen_t l = sizeof(ss);
	ssize_t n = recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT, (void *)&ss, &l);
	int p1 = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	int p2 = ntohs(((struct sockaddr_in *)from)->sin_port);

	if (n != (ssize_t)len || memcmp(buf, msg, len) || p1 != p2) {
		test_msg("got %zd bytes from port %d, want %zu from %d\n", n, p1, len, p2);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct sockaddr_storage a4, b4, c4, a6, b6, any, conn, peer;
	int r4, s1, s2, r6, s6, dual, con, cpeer, st4[2], st6[2], now[2];
	char c;

	test_init(argc, argv);
	datagen(big, BIG, &(uint32_t){ 7 });
	r4 = bound(AF_INET, "127.0.0.1", &a4);
	s1 = bound(AF_INET, "127.0.0.1", &b4);
	s2 = bound(AF_INET, "127.0.0.1", &c4);
	r6 = bound(AF_INET6, "::1", &a6);
	s6 = bound(AF_INET6, "::1", &b6);
	dual = bound(AF_INET6, "::", &any);
	con = bound(AF_INET, "127.0.0.1", &conn);
	cpeer = bound(AF_INET, "127.0.0.1", &peer);
	if (r4 < 0 || s1 < 0 || s2 < 0 || r6 < 0 || s6 < 0 || dual < 0 || con < 0 || cpeer < 0)
		return fail_errno("sockets"), 1;
	/* r4 keeps the default size, unlocked; r6's is the user's, locked */
	if (setsockopt(r6, SOL_SOCKET, SO_RCVBUF, &(int){ 150000 }, sizeof(int)))
		return fail_errno("SO_RCVBUF"), 1;
#ifdef UDPLITE
	if (setsockopt(s2, IPPROTO_UDPLITE, UDPLITE_SEND_CSCOV, &(int){ 20 }, sizeof(int)))
		return fail_errno("UDPLITE_SEND_CSCOV"), 1;
#endif
	((struct sockaddr_in *)&any)->sin_family = AF_INET; /* the dual one, over IPv4 */
	((struct sockaddr_in *)&any)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (send_to(s1, "first", 5, &a4) || send_to(s2, "x", 1, &a4) || send_to(s1, big, BIG, &a4) ||
	    send_to(s6, "six", 3, &a6) || send_to(s1, "mapped", 6, &any) ||
	    send_to(s2, "before connect", 14, &conn))
		return fail_errno("send"), 1;
	if (connect(con, (void *)&peer, sizeof(peer)) || send_to(cpeer, "peer", 4, &conn))
		return fail_errno("connect"), 1;
	if (recv(r4, &c, 1, MSG_PEEK) != 1) /* the task's own peek */
		return fail_errno("peek"), 1;
	rcvbuf_state(r4, st4);
	rcvbuf_state(r6, st6);
	test_daemon();
	test_waitsig();

	rcvbuf_state(r4, now);
	if (now[0] != st4[0] || now[1] != st4[1])
		return fail("IPv4 receiver: buffer %d lock %d, was %d lock %d", now[0], now[1],
			    st4[0], st4[1]), 1;
	rcvbuf_state(r6, now);
	if (now[0] != st6[0] || now[1] != st6[1])
		return fail("IPv6 receiver: buffer %d lock %d, was %d lock %d", now[0], now[1],
			    st6[0], st6[1]), 1;

	if (expect(r4, "first", 5, &b4) || expect(r4, "x", 1, &c4) || expect(r4, big, BIG, &b4) ||
	    expect(r6, "six", 3, &b6) || expect(dual, "mapped", 6, &b4) ||
	    expect(con, "before connect", 14, &c4) || expect(con, "peer", 4, &peer))
		return fail("queued datagrams differ after the restore"), 1;
	if (recv(r4, &c, 1, MSG_DONTWAIT) >= 0 || recv(con, &c, 1, MSG_DONTWAIT) >= 0)
		return fail("more datagrams than were queued"), 1;
	if (send_to(s1, "after", 5, &a4) || expect(r4, "after", 5, &b4))
		return fail("a datagram after the restore"), 1;
	pass();
	return 0;
}
