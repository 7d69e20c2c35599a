// SPDX-License-Identifier: GPL-2.0
/*
 * TCP connections whose FIN is not acknowledged yet (--tcp-established):
 * FIN_WAIT1, LAST_ACK (the peer's FIN came first) and CLOSING (both at
 * once). The FIN is held back deterministically by a peer that does not
 * read: its receive buffer is full, so data is left unsent and the FIN
 * waits behind it. One more FIN_WAIT1 end has its data and FIN marked
 * sent (repair mode): the peer, its window closed, drops them and they
 * stay unacknowledged (retransmitted). After the restore each peer reads every byte, then
 * the end of stream; the FIN_WAIT1 end still receives until its peer
 * closes; the LAST_ACK and CLOSING ends read their peer's data, then the
 * end of stream; every FIN gets acknowledged (nothing left to send).
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "zdtm.h"

enum { FW1, FW1S, LACK, CLOS, NR };
static const int want[NR] = { TCP_FIN_WAIT1, TCP_FIN_WAIT1, TCP_LAST_ACK, TCP_CLOSING };
static int a[NR], b[NR]; /* a: the end whose FIN is held; b: its peer, not reading */
static size_t sent[NR];

static int state(int sk)
{
	struct tcp_info ti = {};
	socklen_t l = sizeof(ti);

	return getsockopt(sk, IPPROTO_TCP, TCP_INFO, &ti, &l) ? -1 : ti.tcpi_state;
}

static int wait_for(int sk, int st)
{
	for (int i = 0; i < 3000 && state(sk) != st; i++)
		usleep(10000);
	return state(sk) == st;
}

/* Blocks until readable; read()'s result. */
static ssize_t read_wait(int sk, char *buf, size_t len)
{
	struct pollfd p = { sk, POLLIN, 0 };

	return poll(&p, 1, 30000) == 1 ? read(sk, buf, len) : -1;
}

/* Writes the pattern until the peer's receive buffer and ours are full. */
static size_t fill(int sk)
{
	char buf[4096];
	size_t n = 0;
	ssize_t w;

	fcntl(sk, F_SETFL, O_NONBLOCK);
	for (int idle = 0; idle < 5; idle++, usleep(20000))
		do {
			for (size_t i = 0; i < sizeof(buf); i++)
				buf[i] = (n + i) % 251;
			w = write(sk, buf, sizeof(buf));
			if (w > 0)
				n += w, idle = 0;
		} while (w > 0);
	return n;
}

/* Reads @len bytes of the pattern, then the end of stream. */
static int drain(int sk, size_t len)
{
	char buf[8192];
	size_t got = 0;
	ssize_t n;

	while ((n = read_wait(sk, buf, sizeof(buf))) > 0)
		for (ssize_t i = 0; i < n; i++, got++)
			if ((uint8_t)buf[i] != got % 251 || got >= len)
				return -1;
	return n == 0 && got == len ? 0 : -1;
}

static int expect(int sk, const char *msg)
{
	char buf[64];
	ssize_t n = read_wait(sk, buf, sizeof(buf));

	return n == (ssize_t)strlen(msg) && !memcmp(buf, msg, n) && read_wait(sk, buf, 1) == 0;
}

int main(int argc, char **argv)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t l = sizeof(sa);
	int lsk, sz = 16384, outq = 0;

	test_init(argc, argv);
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	lsk = socket(AF_INET, SOCK_STREAM, 0);
	/* Small buffers: little data fills them; accepted sockets inherit them. */
	if (lsk < 0 || setsockopt(lsk, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz)) ||
	    setsockopt(lsk, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz)) ||
	    bind(lsk, (void *)&sa, sizeof(sa)) || listen(lsk, NR) ||
	    getsockname(lsk, (void *)&sa, &l))
		return fail_errno("listen"), 1;
	for (int i = 0; i < NR; i++) {
		a[i] = socket(AF_INET, SOCK_STREAM, 0);
		if (a[i] < 0 || setsockopt(a[i], SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz)) ||
		    setsockopt(a[i], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz)) ||
		    connect(a[i], (void *)&sa, sizeof(sa)) || (b[i] = accept(lsk, NULL, NULL)) < 0)
			return fail_errno("connect"), 1;
	}
	close(lsk);
	/* LAST_ACK: the peer's data and FIN arrive first. */
	if (write(b[LACK], "last-ack", 8) != 8 || shutdown(b[LACK], SHUT_WR) ||
	    !wait_for(a[LACK], TCP_CLOSE_WAIT))
		return fail_errno("LAST_ACK setup"), 1;
	for (int i = 0; i < NR; i++) {
		int on = 1, sndq = TCP_SEND_QUEUE, noq = TCP_NO_QUEUE, off = -1; /* OFF_NO_WP */
		bool repair = i == FW1S;

		sent[i] = fill(a[i]);
		/* FW1S: in repair mode, send queue selected, queued data counts as sent. */
		if ((repair && (setsockopt(a[i], IPPROTO_TCP, TCP_REPAIR, &on, sizeof(on)) ||
				setsockopt(a[i], IPPROTO_TCP, TCP_REPAIR_QUEUE, &sndq,
					   sizeof(sndq)))) ||
		    shutdown(a[i], SHUT_WR) ||
		    (repair && (setsockopt(a[i], IPPROTO_TCP, TCP_REPAIR_QUEUE, &noq, sizeof(noq)) ||
				setsockopt(a[i], IPPROTO_TCP, TCP_REPAIR, &off, sizeof(off)))))
			return fail_errno("shutdown"), 1;
	}
	/* CLOSING: the peer's FIN arrives while ours waits behind the data. */
	if (write(b[CLOS], "closing", 7) != 7 || shutdown(b[CLOS], SHUT_WR))
		return fail_errno("CLOSING setup"), 1;
	for (int i = 0; i < NR; i++)
		if (!wait_for(a[i], want[i]) || ioctl(a[i], SIOCOUTQNSD, &outq) ||
		    (i == FW1S ? outq != 0 : outq <= 0))
			return fail("pair %d: state %d, unsent %d: the FIN is not held", i,
				    state(a[i]), outq), 1;
	test_daemon();
	test_waitsig();

	for (int i = 0; i < NR; i++)
		if (drain(b[i], sent[i]))
			return fail("pair %d: the peer lost data or the end of stream", i), 1;
	if (!expect(a[LACK], "last-ack") || !expect(a[CLOS], "closing"))
		return fail("LAST_ACK/CLOSING end: the peer's data or end of stream lost"), 1;
	if (write(b[FW1], "late", 4) != 4 || shutdown(b[FW1], SHUT_WR) ||
	    !expect(a[FW1], "late"))
		return fail("FIN_WAIT1 end: data after its FIN lost"), 1;
	/* Every FIN acknowledged: nothing left to send. */
	for (int i = 0; i < NR; i++) {
		for (int t = 0; t < 3000 && !ioctl(a[i], SIOCOUTQ, &outq) && outq; t++)
			usleep(10000);
		if (ioctl(a[i], SIOCOUTQ, &outq) || outq)
			return fail("pair %d: %d bytes never acknowledged (state %d)", i, outq,
				    state(a[i])), 1;
	}
	pass();
	return 0;
}
