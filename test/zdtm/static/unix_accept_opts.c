// SPDX-License-Identifier: GPL-2.0
/*
 * accept() gives a unix socket its listener's SO_PASSCRED and SO_PASSSEC:
 * a listener with both on, one accepted end that keeps them and one that
 * turned them off. After the restore each socket has its own values, and
 * the connections still carry data.
 */
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "zdtm.h"

static int opt(int fd, int name)
{
	socklen_t l = sizeof(int);
	int v = -1;

	if (getsockopt(fd, SOL_SOCKET, name, &v, &l))
		return -1;
	return v;
}

/* @fd's SO_PASSCRED and SO_PASSSEC are both @want. */
static int check(int fd, int want, const char *what)
{
	int cred = opt(fd, SO_PASSCRED), sec = opt(fd, SO_PASSSEC);

	if (cred != want || sec != want) {
		fail("%s: SO_PASSCRED %d SO_PASSSEC %d, want %d", what, cred, sec, want);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX, .sun_path = "unix_accept_opts.sock" };
	int l, c1, c2, a1, a2, on = 1, off = 0;
	char buf[4];

	test_init(argc, argv);
	l = socket(AF_UNIX, SOCK_STREAM, 0);
	c1 = socket(AF_UNIX, SOCK_STREAM, 0);
	c2 = socket(AF_UNIX, SOCK_STREAM, 0);
	if (l < 0 || c1 < 0 || c2 < 0 || bind(l, (void *)&sun, sizeof(sun)) || listen(l, 4) ||
	    setsockopt(l, SOL_SOCKET, SO_PASSCRED, &on, sizeof(on)) ||
	    setsockopt(l, SOL_SOCKET, SO_PASSSEC, &on, sizeof(on)))
		return fail_errno("listener"), 1;
	if (connect(c1, (void *)&sun, sizeof(sun)) || connect(c2, (void *)&sun, sizeof(sun)))
		return fail_errno("connect"), 1;
	a1 = accept(l, NULL, NULL);
	a2 = accept(l, NULL, NULL);
	if (a1 < 0 || a2 < 0 || setsockopt(a2, SOL_SOCKET, SO_PASSCRED, &off, sizeof(off)) ||
	    setsockopt(a2, SOL_SOCKET, SO_PASSSEC, &off, sizeof(off)))
		return fail_errno("accept"), 1;
	if (check(l, 1, "listener") || check(a1, 1, "first accepted") ||
	    check(a2, 0, "second accepted") || check(c1, 0, "client"))
		return 1; /* as set up: the kernel copies the flags */
	test_daemon();
	test_waitsig();

	if (check(l, 1, "listener") || check(a1, 1, "first accepted (kept)") ||
	    check(a2, 0, "second accepted (turned off)") || check(c1, 0, "first client") ||
	    check(c2, 0, "second client"))
		return 1;
	if (write(c1, "one", 3) != 3 || read(a1, buf, 3) != 3 || memcmp(buf, "one", 3) ||
	    write(a2, "two", 3) != 3 || read(c2, buf, 3) != 3 || memcmp(buf, "two", 3))
		return fail_errno("data after the restore"), 1;
	pass();
	return 0;
}
