// SPDX-License-Identifier: GPL-2.0
/*
 * Accepted connections whose listener is gone: one whose listener was
 * closed (its socket file stays), one whose listener's path was unlinked
 * (the listener still listens, by fd only).
 */
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "zdtm.h"

static int pair(const char *name, int *cli, int *srv, int *lis)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int l = socket(AF_UNIX, SOCK_STREAM, 0);

	strcpy(a.sun_path, name);
	*cli = socket(AF_UNIX, SOCK_STREAM, 0);
	if (bind(l, (void *)&a, sizeof(a)) || listen(l, 1) || connect(*cli, (void *)&a, sizeof(a)))
		return -1;
	*srv = accept(l, NULL, NULL);
	*lis = l;
	return *srv < 0 ? -1 : 0;
}

static int name_is(int sk, int peer, const char *name)
{
	struct sockaddr_un a = {};
	socklen_t len = sizeof(a);
	int r = peer ? getpeername(sk, (void *)&a, &len) : getsockname(sk, (void *)&a, &len);

	return !r && !strcmp(a.sun_path, name);
}

static int talk(int a, int b)
{
	char buf[8] = {};

	return send(a, "hi", 2, 0) == 2 && recv(b, buf, sizeof(buf), 0) == 2 && !strcmp(buf, "hi");
}

int main(int argc, char **argv)
{
	int c1, s1, l1, c2, s2, l2;
	char buf[4] = {};
	struct stat st;

	test_init(argc, argv);
	if (pair("closed", &c1, &s1, &l1) || pair("unlinked", &c2, &s2, &l2))
		return fail_errno("connect"), 1;
	close(l1);
	if (unlink("unlinked") || send(c1, "q1", 2, 0) != 2)
		return fail_errno("unlink/send"), 1;
	test_daemon();
	test_waitsig();

	if (!name_is(s1, 0, "closed") || !name_is(c1, 1, "closed") || !name_is(s2, 0, "unlinked") ||
	    !name_is(c2, 1, "unlinked") || !name_is(l2, 0, "unlinked"))
		return fail("names differ after restore"), 1;
	if (stat("closed", &st) || !S_ISSOCK(st.st_mode) || !stat("unlinked", &st))
		return fail("socket files differ after restore"), 1;
	if (recv(s1, buf, sizeof(buf), 0) != 2 || memcmp(buf, "q1", 2))
		return fail("queued data lost"), 1;
	if (!talk(c1, s1) || !talk(s1, c1) || !talk(c2, s2) || !talk(s2, c2))
		return fail("connections broken"), 1;
	pass();
	return 0;
}
