// SPDX-License-Identifier: GPL-2.0
/*
 * Dgram sockets connected to bound ones (many to one): a server bound to
 * a path with messages queued from two clients in order, and a server
 * bound to a path then unlinked, its client still connected to it.
 */
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "zdtm.h"

static int mksk(const char *bind_to, const char *connect_to)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int sk = socket(AF_UNIX, SOCK_DGRAM, 0);

	if (bind_to) {
		strcpy(a.sun_path, bind_to);
		if (bind(sk, (void *)&a, sizeof(a)))
			return -1;
	}
	if (connect_to) {
		strcpy(a.sun_path, connect_to);
		if (connect(sk, (void *)&a, sizeof(a)))
			return -1;
	}
	return sk;
}

static int name_is(int sk, int peer, const char *name)
{
	struct sockaddr_un a = {};
	socklen_t len = sizeof(a);
	int r = peer ? getpeername(sk, (void *)&a, &len) : getsockname(sk, (void *)&a, &len);

	return !r && !strcmp(a.sun_path, name);
}

static int got(int sk, const char *msg)
{
	char buf[64] = {};

	return recv(sk, buf, sizeof(buf), MSG_DONTWAIT) == (ssize_t)strlen(msg) &&
	       !strcmp(buf, msg);
}

int main(int argc, char **argv)
{
	static const char *msgs[] = { "one-a", "two-b", "three-a", "four-b" };
	int srv, c[2], gone, gc;
	struct stat st;

	test_init(argc, argv);
	srv = mksk("srv", NULL);
	c[0] = mksk(NULL, "srv");
	c[1] = mksk("cli-b", "srv");
	gone = mksk("gone", NULL);
	gc = mksk(NULL, "gone");
	if (srv < 0 || c[0] < 0 || c[1] < 0 || gone < 0 || gc < 0 || unlink("gone"))
		return fail_errno("sockets"), 1;
	for (int i = 0; i < 4; i++)
		if (send(c[i & 1], msgs[i], strlen(msgs[i]), 0) < 0)
			return fail_errno("send"), 1;
	if (send(gc, "to-gone", 7, 0) != 7)
		return fail_errno("send to gone"), 1;
	test_daemon();
	test_waitsig();

	for (int i = 0; i < 4; i++)
		if (!got(srv, msgs[i]))
			return fail("message %d lost or out of order", i), 1;
	if (!got(gone, "to-gone"))
		return fail("message to the unlinked socket lost"), 1;
	if (!name_is(srv, 0, "srv") || !name_is(c[0], 1, "srv") || !name_is(c[1], 0, "cli-b") ||
	    !name_is(gone, 0, "gone") || !name_is(gc, 1, "gone"))
		return fail("names differ after restore"), 1;
	if (!stat("gone", &st))
		return fail("the unlinked name is back on disk"), 1;
	if (send(c[1], "after", 5, 0) != 5 || !got(srv, "after") ||
	    send(gc, "again", 5, 0) != 5 || !got(gone, "again"))
		return fail("clients no longer reach their servers"), 1;
	pass();
	return 0;
}
