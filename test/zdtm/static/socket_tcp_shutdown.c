// SPDX-License-Identifier: GPL-2.0
/*
 * The shutdown state of inet sockets (inet_sk_entry.shutdown), set by the
 * task: an established TCP connection shut for reading (its peer's data
 * still arrives and is acknowledged, reads end at once), connected UDP
 * sockets shut for reading and for writing, an unconnected UDP socket
 * shut both ways and an unconnected TCP one shut for reading (ENOTCONN,
 * the flags set all the same). After the restore poll() and send() see
 * the same, and a fresh unconnected TCP socket, never shut (poll() says
 * HUP for any closed TCP socket), still connects and sends.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "zdtm.h"

static short events(int sk)
{
	struct pollfd p = { sk, POLLIN | POLLRDHUP | POLLOUT, 0 };

	return poll(&p, 1, 0) == 1 ? p.revents : 0;
}

int main(int argc, char **argv)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t l = sizeof(sa);
	int lsk, ta, tb, urd, uwr, uboth, tfresh, trd, acc;
	char c;

	test_init(argc, argv);
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	lsk = socket(AF_INET, SOCK_STREAM, 0);
	if (lsk < 0 || bind(lsk, (void *)&sa, sizeof(sa)) || listen(lsk, 1) ||
	    getsockname(lsk, (void *)&sa, &l))
		return fail_errno("listen"), 1;
	ta = socket(AF_INET, SOCK_STREAM, 0);
	if (ta < 0 || connect(ta, (void *)&sa, sizeof(sa)) || (tb = accept(lsk, NULL, NULL)) < 0)
		return fail_errno("connect"), 1;
	tfresh = socket(AF_INET, SOCK_STREAM, 0);
	trd = socket(AF_INET, SOCK_STREAM, 0);
	if (tfresh < 0 || trd < 0 || (shutdown(trd, SHUT_RD) && errno != ENOTCONN))
		return fail_errno("unconnected TCP"), 1;
	urd = socket(AF_INET, SOCK_DGRAM, 0);
	uwr = socket(AF_INET, SOCK_DGRAM, 0);
	uboth = socket(AF_INET, SOCK_DGRAM, 0);
	if (urd < 0 || uwr < 0 || uboth < 0 || connect(urd, (void *)&sa, sizeof(sa)) ||
	    connect(uwr, (void *)&sa, sizeof(sa)))
		return fail_errno("udp"), 1;
	if (shutdown(ta, SHUT_RD) || shutdown(urd, SHUT_RD) || shutdown(uwr, SHUT_WR) ||
	    (shutdown(uboth, SHUT_RDWR) && errno != ENOTCONN))
		return fail_errno("shutdown"), 1;
	test_daemon();
	test_waitsig();

	if (!(events(ta) & POLLRDHUP) || read(ta, &c, 1) != 0)
		return fail("TCP: reading not shut (events %#x)", events(ta)), 1;
	if (write(tb, "x", 1) != 1 || write(ta, "y", 1) != 1 || read(tb, &c, 1) != 1 || c != 'y')
		return fail_errno("TCP: writing after the restore"), 1;
	if (!(events(urd) & POLLRDHUP) || (events(uwr) & POLLRDHUP))
		return fail("UDP: read shutdown %#x / %#x", events(urd), events(uwr)), 1;
	if (send(uwr, "z", 1, MSG_NOSIGNAL) != -1 || errno != EPIPE)
		return fail_errno("UDP: writing not shut"), 1;
	if (send(urd, "z", 1, MSG_NOSIGNAL) != 1)
		return fail_errno("UDP: writing shut on the reading-shut socket"), 1;
	if (!(events(uboth) & POLLHUP))
		return fail("UDP: unconnected socket not shut (events %#x)", events(uboth)), 1;
	if (!(events(trd) & POLLRDHUP) || (events(tfresh) & POLLRDHUP))
		return fail("TCP unconnected: %#x / %#x", events(trd), events(tfresh)), 1;
	if (connect(tfresh, (void *)&sa, sizeof(sa)) || (acc = accept(lsk, NULL, NULL)) < 0 ||
	    send(tfresh, "f", 1, MSG_NOSIGNAL) != 1 || read(acc, &c, 1) != 1 || c != 'f')
		return fail_errno("TCP: a fresh socket connects and sends"), 1;
	pass();
	return 0;
}
