// SPDX-License-Identifier: GPL-2.0
/*
 * Netlink sockets: a NETLINK_ROUTE socket bound to a port id of its
 * choosing and to groups below and above 32 still answers an RTM_GETLINK
 * dump; two NETLINK_USERSOCK sockets, one connected to the other, still
 * exchange a message; an unbound socket stays unbound; a socket
 * autobound by its first send keeps the port id the kernel gave it.
 */
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "zdtm.h"

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

static int nl(int proto, unsigned portid, unsigned groups)
{
	struct sockaddr_nl a = { .nl_family = AF_NETLINK, .nl_pid = portid, .nl_groups = groups };
	int sk = socket(AF_NETLINK, SOCK_RAW, proto);

	if (sk < 0 || (portid | groups ? bind(sk, (void *)&a, sizeof(a)) : 0))
		return -1;
	return sk;
}

static unsigned portid_of(int sk)
{
	struct sockaddr_nl a = {};
	socklen_t l = sizeof(a);

	return getsockname(sk, (void *)&a, &l) ? ~0u : a.nl_pid;
}

static int getlink(int sk)
{
	struct {
		struct nlmsghdr h;
		struct ifinfomsg i;
	} req = { { sizeof(req), RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, 7, 0 }, {} };
	char buf[16384];
	ssize_t n;

	if (send(sk, &req, sizeof(req), 0) != sizeof(req))
		return -1;
	n = recv(sk, buf, sizeof(buf), 0);
	if (n < (ssize_t)sizeof(struct nlmsghdr))
		return -1;
	/* read the rest of the dump, so nothing stays queued */
	while (((struct nlmsghdr *)buf)->nlmsg_type != NLMSG_DONE &&
	       (n = recv(sk, buf, sizeof(buf), MSG_DONTWAIT)) > 0)
		;
	return ((struct nlmsghdr *)buf)->nlmsg_seq == 7 ? 0 : -1;
}

int main(int argc, char **argv)
{
	unsigned group = 33, want_groups[4] = {}, groups[4];
	socklen_t l;
	int route, u1, u2, unbound, autob;
	unsigned auto_port;
	char msg[64];

	test_init(argc, argv);
	route = nl(NETLINK_ROUTE, 0x7a000001, 1u << 19 | 1u << 23); /* quiet groups here */
	u1 = nl(NETLINK_USERSOCK, 0x7a000002, 0);
	u2 = nl(NETLINK_USERSOCK, 0x7a000003, 0);
	unbound = nl(NETLINK_ROUTE, 0, 0);
	autob = nl(NETLINK_ROUTE, 0, 0);
	if (route < 0 || u1 < 0 || u2 < 0 || unbound < 0 || autob < 0)
		return fail_errno("netlink socket"), 1;
	if (setsockopt(route, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &group, sizeof(group)))
		return fail_errno("NETLINK_ADD_MEMBERSHIP"), 1;
	if (connect(u1, (void *)&(struct sockaddr_nl){ AF_NETLINK, 0, 0x7a000003, 0 },
		    sizeof(struct sockaddr_nl)))
		return fail_errno("connect"), 1;
	if (getlink(autob))
		return fail("RTM_GETLINK before the dump"), 1;
	auto_port = portid_of(autob);
	l = sizeof(want_groups);
	if (getsockopt(route, SOL_NETLINK, NETLINK_LIST_MEMBERSHIPS, want_groups, &l))
		return fail_errno("NETLINK_LIST_MEMBERSHIPS"), 1;
	test_daemon();
	test_waitsig();

	if (portid_of(route) != 0x7a000001 || portid_of(u1) != 0x7a000002 ||
	    portid_of(unbound) != 0 || portid_of(autob) != auto_port)
		return fail("port ids changed: %x %x %x %x (autobound was %x)", portid_of(route),
			    portid_of(u1), portid_of(unbound), portid_of(autob), auto_port), 1;
	memset(groups, 0, sizeof(groups));
	l = sizeof(groups);
	if (getsockopt(route, SOL_NETLINK, NETLINK_LIST_MEMBERSHIPS, groups, &l) ||
	    memcmp(groups, want_groups, sizeof(groups)))
		return fail("groups changed: %x %x, want %x %x", groups[0], groups[1],
			    want_groups[0], want_groups[1]), 1;
	if (getlink(route) || getlink(autob))
		return fail("RTM_GETLINK after the restore"), 1;
	if (send(u1, "hello", 5, 0) != 5 || recv(u2, msg, sizeof(msg), 0) != 5 ||
	    memcmp(msg, "hello", 5))
		return fail_errno("user socket message after the restore"), 1;
	pass();
	return 0;
}
