// SPDX-License-Identifier: GPL-2.0
/*
 * UDP-Lite and raw sockets: a UDP-Lite pair bound on 127.0.0.1 keeps its
 * addresses (not its checksum coverage: CRIU's format has no room); two raw sockets of an unassigned
 * protocol (253) exchange a datagram after the restore; raw ICMP and
 * ICMPv6 sockets keep their type filters, one its IP_HDRINCL.
 */
#include <arpa/inet.h>
#include <linux/icmp.h>
#include <linux/icmpv6.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "zdtm.h"

#define PROTO_TEST 253

static int bound(int type, int proto, struct sockaddr_in *a)
{
	socklen_t l = sizeof(*a);
	int fd = socket(AF_INET, type, proto);

	*a = (struct sockaddr_in){ .sin_family = AF_INET };
	inet_pton(AF_INET, "127.0.0.1", &a->sin_addr);
	if (fd < 0 || bind(fd, (void *)a, sizeof(*a)) || getsockname(fd, (void *)a, &l))
		return -1;
	return fd;
}

static int get(int sk, int lvl, int opt, void *v, socklen_t l)
{
	return getsockopt(sk, lvl, opt, v, &l) ? -1 : (int)l;
}

int main(int argc, char **argv)
{
	struct sockaddr_in ua, ub, ra, rb;
	struct icmp_filter f4 = { ~(1u << ICMP_ECHOREPLY) }, g4;
	struct icmp6_filter f6, g6;
	int u1, u2, r1, r2, i4, i6, hdr, v = 0;
	char buf[128];
	ssize_t n;

	test_init(argc, argv);
	memset(&f6, 0xff, sizeof(f6));
	f6.data[0] &= ~(1u << (ICMPV6_ECHO_REPLY & 31));
	u1 = bound(SOCK_DGRAM, IPPROTO_UDPLITE, &ua);
	u2 = bound(SOCK_DGRAM, IPPROTO_UDPLITE, &ub);
	r1 = bound(SOCK_RAW, PROTO_TEST, &ra);
	r2 = bound(SOCK_RAW, PROTO_TEST, &rb);
	i4 = socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
	i6 = socket(AF_INET6, SOCK_RAW, IPPROTO_ICMPV6);
	hdr = socket(AF_INET, SOCK_RAW, PROTO_TEST);
	if (u1 < 0 || u2 < 0 || r1 < 0 || r2 < 0 || i4 < 0 || i6 < 0 || hdr < 0)
		return fail_errno("socket"), 1;
	if (setsockopt(i4, SOL_RAW, ICMP_FILTER, &f4, sizeof(f4)) ||
	    setsockopt(i6, IPPROTO_ICMPV6, ICMPV6_FILTER, &f6, sizeof(f6)) ||
	    setsockopt(hdr, IPPROTO_IP, IP_HDRINCL, &(int){ 1 }, sizeof(int)))
		return fail_errno("setsockopt"), 1;
	test_daemon();
	test_waitsig();

	if (sendto(u1, "lite", 4, 0, (void *)&ub, sizeof(ub)) != 4 ||
	    recv(u2, buf, sizeof(buf), 0) != 4 || memcmp(buf, "lite", 4))
		return fail_errno("UDP-Lite datagram after the restore"), 1;
	if (sendto(r1, "raw253", 6, 0, (void *)&rb, sizeof(rb)) != 6)
		return fail_errno("raw send after the restore"), 1;
	n = recv(r2, buf, sizeof(buf), 0); /* with its IP header */
	if (n != 26 || memcmp(buf + 20, "raw253", 6))
		return fail("raw datagram after the restore: %zd bytes", n), 1;
	if (get(i4, SOL_RAW, ICMP_FILTER, &g4, sizeof(g4)) != sizeof(g4) || g4.data != f4.data)
		return fail("ICMP_FILTER lost"), 1;
	if (get(i6, IPPROTO_ICMPV6, ICMPV6_FILTER, &g6, sizeof(g6)) != sizeof(g6) ||
	    memcmp(&g6, &f6, sizeof(f6)))
		return fail("ICMPV6_FILTER lost"), 1;
	if (get(hdr, IPPROTO_IP, IP_HDRINCL, &v, sizeof(v)) != sizeof(v) || !v)
		return fail("IP_HDRINCL lost"), 1;
	pass();
	return 0;
}
