// SPDX-License-Identifier: GPL-2.0
/*
 * TCP connections in SYN_SENT (--tcp-established), over IPv4 and IPv6:
 * each listener drops every SYN with a socket filter, so a non-blocking
 * connect() stays in the handshake across the dump. After the restore
 * each socket is still connecting from the same port; once the filter is
 * detached a retransmitted SYN gets through, the connect completes and
 * data goes both ways.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "zdtm.h"

struct conn {
	int lsk, c, port;
};

static int tcp_state(int sk)
{
	struct tcp_info ti = {};
	socklen_t l = sizeof(ti);

	return getsockopt(sk, IPPROTO_TCP, TCP_INFO, &ti, &l) ? -1 : ti.tcpi_state;
}

static int port_of(int sk)
{
	struct sockaddr_in6 a = {};
	socklen_t l = sizeof(a);

	/* sin_port and sin6_port sit at the same offset */
	return getsockname(sk, (void *)&a, &l) ? -1 : ntohs(a.sin6_port);
}

/* A listener on @family's loopback dropping every SYN, and a connect() to it. */
static int open_conn(struct conn *k, int family)
{
	struct sock_filter drop[] = { BPF_STMT(BPF_RET | BPF_K, 0) };
	struct sock_fprog prog = { 1, drop };
	struct sockaddr_storage a = { .ss_family = family };
	socklen_t l = sizeof(a);

	if (family == AF_INET)
		((struct sockaddr_in *)&a)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	else
		((struct sockaddr_in6 *)&a)->sin6_addr = in6addr_loopback;
	k->lsk = socket(family, SOCK_STREAM, 0);
	k->c = socket(family, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (k->lsk < 0 || k->c < 0 || bind(k->lsk, (void *)&a, l) || listen(k->lsk, 8) ||
	    getsockname(k->lsk, (void *)&a, &l) ||
	    setsockopt(k->lsk, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)))
		return -1;
	if (!connect(k->c, (void *)&a, l) || errno != EINPROGRESS)
		return -1;
	return 0;
}

/* After the restore: still connecting; completes once SYNs pass. */
static int finish_conn(struct conn *k)
{
	struct pollfd pf = { .fd = k->c, .events = POLLOUT };
	socklen_t l = sizeof(int);
	int err = -1, s;
	char buf[4];

	if (tcp_state(k->c) != TCP_SYN_SENT || port_of(k->c) != k->port)
		return fail("after the restore: state %d port %d (was SYN_SENT, %d)",
			    tcp_state(k->c), port_of(k->c), k->port), -1;
	if (setsockopt(k->lsk, SOL_SOCKET, SO_DETACH_FILTER, &(int){ 0 }, sizeof(int)))
		return fail_errno("SO_DETACH_FILTER"), -1;
	/* the SYN is retransmitted after 1, 3, 7, 15, 31 s */
	if (poll(&pf, 1, 40000) != 1 || getsockopt(k->c, SOL_SOCKET, SO_ERROR, &err, &l) || err)
		return fail("connect did not complete (error %d)", err), -1;
	s = accept(k->lsk, NULL, NULL);
	if (s < 0)
		return fail_errno("accept"), -1;
	if (fcntl(k->c, F_SETFL, 0) || write(k->c, "ping", 4) != 4 || read(s, buf, 4) != 4 ||
	    memcmp(buf, "ping", 4) || write(s, "pong", 4) != 4 || read(k->c, buf, 4) != 4 ||
	    memcmp(buf, "pong", 4))
		return fail_errno("data after the handshake"), -1;
	return 0;
}

int main(int argc, char **argv)
{
	struct conn k[2];

	test_init(argc, argv);
	if (open_conn(&k[0], AF_INET) || open_conn(&k[1], AF_INET6))
		return fail_errno("connect did not stay in progress"), 1;
	usleep(100000);
	for (int i = 0; i < 2; i++) {
		k[i].port = port_of(k[i].c);
		if (tcp_state(k[i].c) != TCP_SYN_SENT)
			return fail("state %d, not SYN_SENT", tcp_state(k[i].c)), 1;
	}
	test_daemon();
	test_waitsig();

	if (finish_conn(&k[0]) || finish_conn(&k[1]))
		return 1;
	pass();
	return 0;
}
