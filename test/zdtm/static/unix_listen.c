// SPDX-License-Identifier: GPL-2.0
/*
 * A listener bound to a relative path with one accepted connection (data
 * queued both ways), one connection queued but not accepted, a bound
 * unconnected socket and an unbound one. SK_TYPE picks stream or seqpacket.
 */
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "zdtm.h"

#ifndef SK_TYPE
#define SK_TYPE SOCK_STREAM
#endif

static struct sockaddr_un addr(const char *name)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };

	strcpy(a.sun_path, name);
	return a;
}

static int named(int sk, int peer, const char *name)
{
	struct sockaddr_un a = {};
	socklen_t len = sizeof(a);
	int r = peer ? getpeername(sk, (void *)&a, &len) : getsockname(sk, (void *)&a, &len);

	return !r && len == offsetof(struct sockaddr_un, sun_path) + strlen(name) + 1 &&
	       !strcmp(a.sun_path, name);
}

static int talk(int a, int b, const char *msg)
{
	char buf[64] = {};

	return send(a, msg, strlen(msg), 0) == (ssize_t)strlen(msg) &&
	       recv(b, buf, sizeof(buf), 0) == (ssize_t)strlen(msg) && !strcmp(buf, msg);
}

int main(int argc, char **argv)
{
	struct sockaddr_un a = addr("sock"), b = addr("idle");
	int l, srv, cli, queued, idle, unbound, acc, late;
	char buf[64] = {};

	test_init(argc, argv);
	l = socket(AF_UNIX, SK_TYPE, 0);
	cli = socket(AF_UNIX, SK_TYPE, 0);
	queued = socket(AF_UNIX, SK_TYPE, 0);
	idle = socket(AF_UNIX, SK_TYPE, 0);
	unbound = socket(AF_UNIX, SK_TYPE, 0);
	if (bind(l, (void *)&a, sizeof(a)) || listen(l, 5) || bind(idle, (void *)&b, sizeof(b)))
		return fail_errno("bind/listen"), 1;
	if (connect(cli, (void *)&a, sizeof(a)) || (srv = accept(l, NULL, NULL)) < 0 ||
	    connect(queued, (void *)&a, sizeof(a)))
		return fail_errno("connect/accept"), 1;
	if (send(cli, "to-server", 9, 0) != 9 || send(srv, "to-client", 9, 0) != 9)
		return fail_errno("send"), 1;
	test_daemon();
	test_waitsig();

	if (!named(l, 0, "sock") || !named(srv, 0, "sock") || !named(cli, 1, "sock") ||
	    !named(idle, 0, "idle") || !named(queued, 1, "sock"))
		return fail("names differ after restore"), 1;
	if (recv(srv, buf, sizeof(buf), 0) != 9 || memcmp(buf, "to-server", 9) ||
	    recv(cli, buf, sizeof(buf), 0) != 9 || memcmp(buf, "to-client", 9))
		return fail("queued data lost"), 1;
	if (!talk(cli, srv, "ping") || !talk(srv, cli, "pong"))
		return fail("accepted connection broken"), 1;
	acc = accept(l, NULL, NULL);
	if (acc < 0 || !talk(queued, acc, "queued") || !talk(acc, queued, "back"))
		return fail("queued connection not accepted or broken"), 1;
	late = socket(AF_UNIX, SK_TYPE, 0);
	if (connect(late, (void *)&a, sizeof(a)) || (acc = accept(l, NULL, NULL)) < 0 ||
	    !talk(late, acc, "new"))
		return fail("new connection after restore failed"), 1;
	if (connect(unbound, (void *)&a, sizeof(a)))
		return fail("unbound socket can't connect"), 1;
	pass();
	return 0;
}
