// SPDX-License-Identifier: GPL-2.0
/*
 * UDP sockets, bound (IPv4, IPv6) and connected, keep their addresses:
 * datagrams flow between them after the restore.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "zdtm.h"

static int bound(int family, const char *addr, struct sockaddr_storage *ss)
{
	socklen_t len = sizeof(*ss);
	int fd = socket(family, SOCK_DGRAM, 0);

	memset(ss, 0, sizeof(*ss));
	ss->ss_family = family;
	if (family == AF_INET)
		inet_pton(AF_INET, addr, &((struct sockaddr_in *)ss)->sin_addr);
	else
		inet_pton(AF_INET6, addr, &((struct sockaddr_in6 *)ss)->sin6_addr);
	if (fd < 0 || bind(fd, (void *)ss, sizeof(*ss)) || getsockname(fd, (void *)ss, &len))
		return -1;
	return fd;
}

static int roundtrip(int from, int to, const struct sockaddr_storage *dst)
{
	char buf[8] = {};

	if (sendto(from, "ping", 4, 0, (const void *)dst, sizeof(*dst)) != 4)
		return -1;
	return recv(to, buf, sizeof(buf), 0) == 4 && !memcmp(buf, "ping", 4) ? 0 : -1;
}

int main(int argc, char **argv)
{
	struct sockaddr_storage a4, b4, a6, b6;
	int s4, t4, s6, t6;

	test_init(argc, argv);
	s4 = bound(AF_INET, "127.0.0.1", &a4);
	t4 = bound(AF_INET, "127.0.0.1", &b4);
	s6 = bound(AF_INET6, "::1", &a6);
	t6 = bound(AF_INET6, "::1", &b6);
	if (s4 < 0 || t4 < 0 || s6 < 0 || t6 < 0)
		return fail_errno("bind"), 1;
	if (connect(t4, (void *)&a4, sizeof(a4)))
		return fail_errno("connect"), 1;
	test_daemon();
	test_waitsig();
	if (roundtrip(s4, t4, &b4))
		return fail_errno("v4 to the connected socket"), 1;
	if (send(t4, "ping", 4, 0) != 4 || recv(s4, (char[8]){}, 8, 0) != 4)
		return fail_errno("v4 from the connected socket"), 1;
	if (roundtrip(s6, t6, &b6) || roundtrip(t6, s6, &a6))
		return fail_errno("v6"), 1;
	pass();
	return 0;
}
