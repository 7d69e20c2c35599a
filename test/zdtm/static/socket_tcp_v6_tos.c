// SPDX-License-Identifier: GPL-2.0
/*
 * IP_TOS of dual-stack AF_INET6 sockets (--tcp-established): the kernel
 * keeps it apart from IPV6_TCLASS and marks the socket's IPv4 (mapped)
 * traffic with it. A UDP socket connected to an IPv4 receiver through
 * ::ffff:127.0.0.1 with both set to different values, a TCP connection
 * made the same way with IP_TOS and then SO_PRIORITY of its own, and a
 * dual-stack listener with IP_TOS only. After the restore each has the
 * same IP_TOS, IPV6_TCLASS and SO_PRIORITY, and the receiver sees the
 * UDP socket's datagram arrive with its IP_TOS (IP_RECVTOS, which amber
 * does not keep: set again).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "zdtm.h"

#define NR_SKS 3
#define UDP_TOS 0x28

static const char *const names[NR_SKS] = { "udp6", "tcp6 client", "tcp6 listener" };

struct tos_state {
	int tos, tclass, prio;
};

static int get_int(int sk, int level, int opt)
{
	socklen_t l = sizeof(int);
	int v = -1;

	getsockopt(sk, level, opt, &v, &l);
	return v;
}

static int seti(int sk, int level, int opt, const char *name, int v)
{
	if (setsockopt(sk, level, opt, &v, sizeof(v)))
		return fail_errno("setsockopt %s %d", name, v), -1;
	return 0;
}

static void read_state(const int *sks, struct tos_state *st)
{
	for (int i = 0; i < NR_SKS; i++)
		st[i] = (struct tos_state){ get_int(sks[i], IPPROTO_IP, IP_TOS),
					    get_int(sks[i], IPPROTO_IPV6, IPV6_TCLASS),
					    get_int(sks[i], SOL_SOCKET, SO_PRIORITY) };
}

/* The TOS byte the receiver saw on a datagram from the UDP socket, or -1. */
static int received_tos(int u6, int r)
{
	char data[8], cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { data, sizeof(data) };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			    .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *c;

	if (send(u6, "tos", 3, 0) != 3)
		return fail_errno("send"), -1;
	if (recvmsg(r, &m, 0) != 3)
		return fail_errno("recvmsg"), -1;
	for (c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c))
		if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_TOS)
			return *(unsigned char *)CMSG_DATA(c);
	return fail("no IP_TOS control message"), -1;
}

int main(int argc, char **argv)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct sockaddr_in6 a6 = { .sin6_family = AF_INET6 };
	struct sockaddr_in6 any6 = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_ANY_INIT };
	socklen_t len = sizeof(sa);
	struct tos_state want[NR_SKS], got[NR_SKS];
	int sks[NR_SKS], r, l4, u6, t6, l6, a, tos;

	test_init(argc, argv);
	r = socket(AF_INET, SOCK_DGRAM, 0);
	l4 = socket(AF_INET, SOCK_STREAM, 0);
	u6 = socket(AF_INET6, SOCK_DGRAM, 0);
	t6 = socket(AF_INET6, SOCK_STREAM, 0);
	l6 = socket(AF_INET6, SOCK_STREAM, 0);
	if (r < 0 || l4 < 0 || u6 < 0 || t6 < 0 || l6 < 0)
		return fail_errno("socket"), 1;
	if (seti(r, IPPROTO_IP, IP_RECVTOS, "IP_RECVTOS", 1) ||
	    seti(u6, IPPROTO_IPV6, IPV6_V6ONLY, "IPV6_V6ONLY", 0) ||
	    seti(u6, IPPROTO_IP, IP_TOS, "IP_TOS", UDP_TOS) ||
	    seti(u6, IPPROTO_IPV6, IPV6_TCLASS, "IPV6_TCLASS", 0x48) ||
	    seti(t6, IPPROTO_IPV6, IPV6_V6ONLY, "IPV6_V6ONLY", 0) ||
	    seti(t6, IPPROTO_IP, IP_TOS, "IP_TOS", 0x68) ||
	    seti(t6, SOL_SOCKET, SO_PRIORITY, "SO_PRIORITY", 5) ||
	    seti(l6, IPPROTO_IPV6, IPV6_V6ONLY, "IPV6_V6ONLY", 0) ||
	    seti(l6, IPPROTO_IP, IP_TOS, "IP_TOS", 0x20))
		return 1;
	/* the IPv4 receiver and listener, reached through their mapped addresses */
	a6.sin6_addr.s6_addr[10] = a6.sin6_addr.s6_addr[11] = 0xff;
	memcpy(&a6.sin6_addr.s6_addr[12], &sa.sin_addr, 4);
	if (bind(r, (void *)&sa, sizeof(sa)) || getsockname(r, (void *)&sa, &len))
		return fail_errno("receiver"), 1;
	a6.sin6_port = sa.sin_port;
	if (connect(u6, (void *)&a6, sizeof(a6)))
		return fail_errno("connect udp6"), 1;
	sa.sin_port = 0;
	len = sizeof(sa);
	if (bind(l4, (void *)&sa, sizeof(sa)) || getsockname(l4, (void *)&sa, &len) ||
	    listen(l4, 4))
		return fail_errno("listener"), 1;
	a6.sin6_port = sa.sin_port;
	if (connect(t6, (void *)&a6, sizeof(a6)))
		return fail_errno("connect tcp6"), 1;
	a = accept(l4, NULL, NULL);
	if (a < 0)
		return fail_errno("accept"), 1;
	if (bind(l6, (void *)&any6, sizeof(any6)) || listen(l6, 4))
		return fail_errno("listen tcp6"), 1;
	sks[0] = u6, sks[1] = t6, sks[2] = l6;
	read_state(sks, want);
	for (int i = 0; i < NR_SKS; i++)
		test_msg("%s: IP_TOS %#x IPV6_TCLASS %#x SO_PRIORITY %d\n", names[i], want[i].tos,
			 want[i].tclass, want[i].prio);
	tos = received_tos(u6, r);
	if (tos != UDP_TOS)
		return fail("before the dump the receiver saw TOS %#x, want %#x", tos, UDP_TOS), 1;
	test_daemon();
	test_waitsig();

	read_state(sks, got);
	for (int i = 0; i < NR_SKS; i++)
		if (memcmp(&got[i], &want[i], sizeof(got[i])))
			return fail("%s: IP_TOS %#x IPV6_TCLASS %#x SO_PRIORITY %d, want %#x %#x %d",
				    names[i], got[i].tos, got[i].tclass, got[i].prio, want[i].tos,
				    want[i].tclass, want[i].prio),
			       1;
	/* amber keeps no IP_RECVTOS (not in CRIU's format): the receiver's own, again */
	if (seti(r, IPPROTO_IP, IP_RECVTOS, "IP_RECVTOS", 1))
		return 1;
	tos = received_tos(u6, r);
	if (tos != UDP_TOS)
		return fail("the receiver saw TOS %#x, want %#x", tos, UDP_TOS), 1;
	pass();
	return 0;
}
