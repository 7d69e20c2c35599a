// SPDX-License-Identifier: GPL-2.0
/*
 * A TCP connection in SYN_SENT (--tcp-established): the listener drops
 * every SYN with a socket filter, so a non-blocking connect() stays in
 * the handshake across the dump. After the restore the socket is still
 * connecting from the same port; once the filter is detached a
 * retransmitted SYN gets through, the connect completes and data goes
 * both ways.
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

static int tcp_state(int sk)
{
	struct tcp_info ti = {};
	socklen_t l = sizeof(ti);

	return getsockopt(sk, IPPROTO_TCP, TCP_INFO, &ti, &l) ? -1 : ti.tcpi_state;
}

static int port_of(int sk)
{
	struct sockaddr_in a = {};
	socklen_t l = sizeof(a);

	return getsockname(sk, (void *)&a, &l) ? -1 : ntohs(a.sin_port);
}

int main(int argc, char **argv)
{
	struct sock_filter drop[] = { BPF_STMT(BPF_RET | BPF_K, 0) };
	struct sock_fprog prog = { 1, drop };
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t l = sizeof(a);
	int lsk, c, s, err = -1, port;
	struct pollfd pf;
	char buf[8];

	test_init(argc, argv);
	lsk = socket(AF_INET, SOCK_STREAM, 0);
	c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (lsk < 0 || c < 0 || bind(lsk, (void *)&a, sizeof(a)) || listen(lsk, 8) ||
	    getsockname(lsk, (void *)&a, &l))
		return fail_errno("listener"), 1;
	if (setsockopt(lsk, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)))
		return fail_errno("SO_ATTACH_FILTER"), 1;
	if (!connect(c, (void *)&a, sizeof(a)) || errno != EINPROGRESS)
		return fail_errno("connect did not stay in progress"), 1;
	usleep(100000);
	port = port_of(c);
	if (tcp_state(c) != TCP_SYN_SENT)
		return fail("state %d, not SYN_SENT", tcp_state(c)), 1;
	test_daemon();
	test_waitsig();

	if (tcp_state(c) != TCP_SYN_SENT || port_of(c) != port)
		return fail("after the restore: state %d port %d (was SYN_SENT, %d)", tcp_state(c),
			    port_of(c), port), 1;
	if (setsockopt(lsk, SOL_SOCKET, SO_DETACH_FILTER, &(int){ 0 }, sizeof(int)))
		return fail_errno("SO_DETACH_FILTER"), 1;
	/* the SYN is retransmitted after 1, 3, 7, 15, 31 s */
	pf = (struct pollfd){ .fd = c, .events = POLLOUT };
	l = sizeof(err);
	if (poll(&pf, 1, 40000) != 1 || getsockopt(c, SOL_SOCKET, SO_ERROR, &err, &l) || err)
		return fail("connect did not complete (error %d)", err), 1;
	s = accept(lsk, NULL, NULL);
	if (s < 0)
		return fail_errno("accept"), 1;
	if (fcntl(c, F_SETFL, 0) || write(c, "ping", 4) != 4 || read(s, buf, 4) != 4 ||
	    memcmp(buf, "ping", 4) || write(s, "pong", 4) != 4 || read(c, buf, 4) != 4 ||
	    memcmp(buf, "pong", 4))
		return fail_errno("data after the handshake"), 1;
	pass();
	return 0;
}
