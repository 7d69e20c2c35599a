// SPDX-License-Identifier: GPL-2.0
/*
 * TCP listening sockets (IPv4, IPv6-only, dual stack) keep their port,
 * options and accept connections after the restore.
 */
#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "zdtm.h"

struct lsk {
	int fd, family, v6only;
	const char *addr;
	in_port_t port;
};

static int make(struct lsk *l)
{
	struct sockaddr_storage ss = {};
	socklen_t len = sizeof(ss);
	int one = 1;

	l->fd = socket(l->family, SOCK_STREAM, 0);
	if (l->fd < 0 || setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    setsockopt(l->fd, IPPROTO_TCP, TCP_KEEPIDLE, &(int){ 77 }, sizeof(int)))
		return -1;
	if (l->family == AF_INET6 &&
	    setsockopt(l->fd, IPPROTO_IPV6, IPV6_V6ONLY, &l->v6only, sizeof(int)))
		return -1;
	ss.ss_family = l->family;
	if (l->family == AF_INET)
		inet_pton(AF_INET, l->addr, &((struct sockaddr_in *)&ss)->sin_addr);
	else
		inet_pton(AF_INET6, l->addr, &((struct sockaddr_in6 *)&ss)->sin6_addr);
	if (bind(l->fd, (void *)&ss, sizeof(ss)) || listen(l->fd, 16 + l->family) ||
	    getsockname(l->fd, (void *)&ss, &len))
		return -1;
	l->port = ((struct sockaddr_in *)&ss)->sin_port; /* same offset in v6 */
	return 0;
}

static int check(struct lsk *l, int family, const char *addr)
{
	struct sockaddr_storage ss = {};
	int c = socket(family, SOCK_STREAM, 0), a, v = 0;
	socklen_t len = sizeof(v);

	if (getsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &v, &len) || !v)
		return fail("SO_REUSEADDR lost"), -1;
	if (getsockopt(l->fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &len) || !v)
		return fail("not listening"), -1;
	if (getsockopt(l->fd, IPPROTO_TCP, TCP_KEEPIDLE, &v, &len) || v != 77)
		return fail("TCP_KEEPIDLE lost"), -1;
	ss.ss_family = family;
	((struct sockaddr_in *)&ss)->sin_port = l->port;
	if (family == AF_INET)
		inet_pton(AF_INET, addr, &((struct sockaddr_in *)&ss)->sin_addr);
	else
		inet_pton(AF_INET6, addr, &((struct sockaddr_in6 *)&ss)->sin6_addr);
	if (c < 0 || connect(c, (void *)&ss, sizeof(ss)))
		return fail_errno("connect to %s", addr), -1;
	a = accept(l->fd, NULL, NULL);
	if (a < 0 || write(c, "x", 1) != 1 || read(a, &v, 1) != 1)
		return fail_errno("accept/read"), -1;
	close(a);
	close(c);
	return 0;
}

int main(int argc, char **argv)
{
	struct lsk l[] = {
		{ .family = AF_INET, .addr = "127.0.0.1" },
		{ .family = AF_INET6, .addr = "::1", .v6only = 1 },
		{ .family = AF_INET6, .addr = "::", .v6only = 0 },
	};

	test_init(argc, argv);
	for (int i = 0; i < 3; i++)
		if (make(&l[i]))
			return fail_errno("listener %d", i), 1;
	test_daemon();
	test_waitsig();
	if (check(&l[0], AF_INET, "127.0.0.1") || check(&l[1], AF_INET6, "::1") ||
	    check(&l[2], AF_INET, "127.0.0.1") || check(&l[2], AF_INET6, "::1"))
		return 1;
	pass();
	return 0;
}
