// SPDX-License-Identifier: GPL-2.0
/*
 * Half-closed TCP connections (--tcp-established): one end shut down
 * writing after sending data (FIN_WAIT2), the other (CLOSE_WAIT) has not
 * read that data nor the end of stream yet, and has data queued for the
 * first. After the restore: the CLOSE_WAIT end reads the data, then the
 * end of stream; the FIN_WAIT2 end reads its data, then more sent after
 * the restore, then the end of stream once the other end shuts down.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "zdtm.h"

static int state(int sk)
{
	struct tcp_info ti = {};
	socklen_t l = sizeof(ti);

	return getsockopt(sk, IPPROTO_TCP, TCP_INFO, &ti, &l) ? -1 : ti.tcpi_state;
}

static int read_all(int sk, char *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		struct pollfd p = { sk, POLLIN, 0 };
		ssize_t n;

		if (poll(&p, 1, 30000) != 1)
			return -1;
		n = read(sk, buf + got, len - got);
		if (n <= 0)
			return -1;
		got += n;
	}
	return 0;
}

static int at_eof(int sk)
{
	struct pollfd p = { sk, POLLIN, 0 };
	char c;

	return poll(&p, 1, 30000) == 1 && read(sk, &c, 1) == 0;
}

int main(int argc, char **argv)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t l = sizeof(a);
	char out[1000], back[500], more[300], buf[1000];
	int lsk, fw, cw; /* FIN_WAIT2 end, CLOSE_WAIT end */

	test_init(argc, argv);
	for (size_t i = 0; i < sizeof(out); i++)
		out[i] = 'a' + i % 26;
	memset(back, 'B', sizeof(back));
	memset(more, 'M', sizeof(more));
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	lsk = socket(AF_INET, SOCK_STREAM, 0);
	if (lsk < 0 || bind(lsk, (void *)&a, sizeof(a)) || listen(lsk, 1) ||
	    getsockname(lsk, (void *)&a, &l))
		return fail_errno("listen"), 1;
	fw = socket(AF_INET, SOCK_STREAM, 0);
	if (fw < 0 || connect(fw, (void *)&a, sizeof(a)))
		return fail_errno("connect"), 1;
	cw = accept(lsk, NULL, NULL);
	if (cw < 0)
		return fail_errno("accept"), 1;
	close(lsk);
	if (write(fw, out, sizeof(out)) != sizeof(out) || shutdown(fw, SHUT_WR) ||
	    write(cw, back, sizeof(back)) != sizeof(back))
		return fail_errno("write/shutdown"), 1;
	for (int i = 0; i < 3000 && (state(fw) != TCP_FIN_WAIT2 || state(cw) != TCP_CLOSE_WAIT); i++)
		usleep(10000);
	if (state(fw) != TCP_FIN_WAIT2 || state(cw) != TCP_CLOSE_WAIT)
		return fail("states %d/%d, not FIN_WAIT2/CLOSE_WAIT", state(fw), state(cw)), 1;
	test_daemon();
	test_waitsig();

	if (read_all(cw, buf, sizeof(out)) || memcmp(buf, out, sizeof(out)))
		return fail("the CLOSE_WAIT end lost its data"), 1;
	if (!at_eof(cw))
		return fail("the CLOSE_WAIT end does not see the end of stream"), 1;
	if (read_all(fw, buf, sizeof(back)) || memcmp(buf, back, sizeof(back)))
		return fail("the FIN_WAIT2 end lost its data"), 1;
	if (write(cw, more, sizeof(more)) != sizeof(more) || read_all(fw, buf, sizeof(more)) ||
	    memcmp(buf, more, sizeof(more)))
		return fail_errno("data to the FIN_WAIT2 end after the restore"), 1;
	if (shutdown(cw, SHUT_WR) || !at_eof(fw))
		return fail("the FIN_WAIT2 end does not see the end of stream"), 1;
	pass();
	return 0;
}
