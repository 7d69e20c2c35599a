// SPDX-License-Identifier: GPL-2.0
/*
 * SO_REUSEADDR of established TCP connections (--tcp-established): an
 * accepted end inherits its listener's, a connecting end set it itself,
 * another did not. Leaving TCP repair mode clears it in the kernel, at
 * the dump (the tree runs on after --leave-running) and at the restore.
 * After the restore each has its own value again, and what it is for
 * works: the accepted end closes first (its TIME_WAIT keeps the port),
 * the listener closes, and a new listener with SO_REUSEADDR binds the
 * same port at once.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "zdtm.h"

static int reuse(int fd)
{
	socklen_t l = sizeof(int);
	int v = -1;

	return getsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &v, &l) ? -1 : v;
}

static int check(int l, int a, int c1, int c2)
{
	int rl = reuse(l), ra = reuse(a), r1 = reuse(c1), r2 = reuse(c2);

	if (rl != 1 || ra != 1 || r1 != 1 || r2 != 0) {
		fail("SO_REUSEADDR: listener %d accepted %d client %d other %d, want 1 1 1 0", rl,
		     ra, r1, r2);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	int one = 1, l, a, a2, c1, c2, n;
	struct pollfd p;
	char buf[16];

	test_init(argc, argv);
	l = socket(AF_INET, SOCK_STREAM, 0);
	c1 = socket(AF_INET, SOCK_STREAM, 0);
	c2 = socket(AF_INET, SOCK_STREAM, 0);
	if (l < 0 || c1 < 0 || c2 < 0 || setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    setsockopt(c1, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(l, (void *)&sa, sizeof(sa)) || getsockname(l, (void *)&sa, &len) || listen(l, 4))
		return fail_errno("listener"), 1;
	if (connect(c1, (void *)&sa, sizeof(sa)) || connect(c2, (void *)&sa, sizeof(sa)))
		return fail_errno("connect"), 1;
	a = accept(l, NULL, NULL);
	a2 = accept(l, NULL, NULL);
	if (a < 0 || a2 < 0)
		return fail_errno("accept"), 1;
	if (check(l, a, c1, c2))
		return 1;
	test_daemon();
	test_waitsig();

	if (check(l, a, c1, c2) || reuse(a2) != 1)
		return 1;
	/* the server side closes first: its end ends in TIME_WAIT on the port */
	if (close(a) || close(a2))
		return fail_errno("close"), 1;
	for (int *c = (int[]){ c1, c2 }, i = 0; i < 2; i++) {
		p = (struct pollfd){ .fd = c[i], .events = POLLIN };
		if (poll(&p, 1, 5000) != 1 || (n = read(c[i], buf, sizeof(buf))) != 0)
			return fail("client %d: no EOF from the closed server end", i), 1;
		close(c[i]);
	}
	usleep(100000); /* the clients' FINs acknowledged: TIME_WAIT */
	close(l);
	l = socket(AF_INET, SOCK_STREAM, 0);
	if (l < 0 || setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(l, (void *)&sa, sizeof(sa)))
		return fail_errno("a new listener on port %d (errno %d)", ntohs(sa.sin_port), errno), 1;
	pass();
	return 0;
}
