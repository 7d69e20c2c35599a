// SPDX-License-Identifier: GPL-2.0
/* Sockets with abstract names: a listener, its accepted connection, a dgram pair. */
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "zdtm.h"

static socklen_t abstract(struct sockaddr_un *a, const char *name)
{
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	/* The test's pid keeps the name unique; it is restored as it was. */
	snprintf(a->sun_path + 1, sizeof(a->sun_path) - 1, "amber-%s-%d", name, getpid());
	return offsetof(struct sockaddr_un, sun_path) + 1 + strlen(a->sun_path + 1);
}

static int same(int sk, int peer, const struct sockaddr_un *want, socklen_t wlen)
{
	struct sockaddr_un a = {};
	socklen_t len = sizeof(a);
	int r = peer ? getpeername(sk, (void *)&a, &len) : getsockname(sk, (void *)&a, &len);

	return !r && len == wlen && !memcmp(&a, want, len);
}

int main(int argc, char **argv)
{
	struct sockaddr_un la, da, db;
	socklen_t ll, dla, dlb;
	int l, cli, srv, d1, d2;
	char buf[16] = {};

	test_init(argc, argv);
	ll = abstract(&la, "listen");
	dla = abstract(&da, "d1");
	dlb = abstract(&db, "d2");
	l = socket(AF_UNIX, SOCK_STREAM, 0);
	cli = socket(AF_UNIX, SOCK_STREAM, 0);
	d1 = socket(AF_UNIX, SOCK_DGRAM, 0);
	d2 = socket(AF_UNIX, SOCK_DGRAM, 0);
	if (bind(l, (void *)&la, ll) || listen(l, 1) || connect(cli, (void *)&la, ll) ||
	    (srv = accept(l, NULL, NULL)) < 0)
		return fail_errno("stream"), 1;
	if (bind(d1, (void *)&da, dla) || bind(d2, (void *)&db, dlb) ||
	    connect(d1, (void *)&db, dlb) || connect(d2, (void *)&da, dla) ||
	    send(d1, "d1->d2", 6, 0) != 6)
		return fail_errno("dgram"), 1;
	test_daemon();
	test_waitsig();

	if (!same(l, 0, &la, ll) || !same(srv, 0, &la, ll) || !same(cli, 1, &la, ll) ||
	    !same(d1, 0, &da, dla) || !same(d1, 1, &db, dlb) || !same(d2, 1, &da, dla))
		return fail("abstract names differ after restore"), 1;
	if (recv(d2, buf, sizeof(buf), MSG_DONTWAIT) != 6 || memcmp(buf, "d1->d2", 6))
		return fail("dgram message lost"), 1;
	if (send(d2, "back", 4, 0) != 4 || recv(d1, buf, sizeof(buf), MSG_DONTWAIT) != 4)
		return fail("dgram pair broken"), 1;
	if (send(cli, "x", 1, 0) != 1 || recv(srv, buf, 1, 0) != 1 || buf[0] != 'x')
		return fail("stream connection broken"), 1;
	pass();
	return 0;
}
