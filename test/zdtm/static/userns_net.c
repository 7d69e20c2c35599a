// SPDX-License-Identifier: GPL-2.0
/*
 * Run as root of a user namespace of its own that owns its network
 * namespace (test_zdtm.py starts it under `helpers/userns_exec --net`:
 * one unshare of both, as `unshare --user --map-root-user --net` makes
 * them): lo up with another MTU, a TCP listener on 127.0.0.1, an
 * established connection through it with bytes queued both ways, and a
 * unix socket pair with a message queued. After the restore its network
 * namespace must still be owned by its user namespace, with its root
 * holding CAP_NET_ADMIN there (it sets lo's MTU again), lo's MTU kept, the
 * queued bytes there, the connection and the listener working over lo.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/nsfs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "zdtm.h"

#define SAVED_MTU 60000
#define LATER_MTU 50000

static int lo_ioctl(unsigned long req, struct ifreq *ifr)
{
	int s = socket(AF_INET, SOCK_DGRAM, 0), ret;

	if (s < 0)
		return -1;
	memset(ifr->ifr_name, 0, sizeof(ifr->ifr_name));
	strcpy(ifr->ifr_name, "lo");
	ret = ioctl(s, req, ifr);
	close(s);
	return ret;
}

static int set_mtu(int mtu)
{
	struct ifreq ifr = { .ifr_mtu = mtu };

	return lo_ioctl(SIOCSIFMTU, &ifr);
}

static int get_mtu(void)
{
	struct ifreq ifr = { 0 };

	return lo_ioctl(SIOCGIFMTU, &ifr) ? -1 : ifr.ifr_mtu;
}

/* Its network namespace's owner is its own user namespace (inode numbers). */
static int net_owned_by_user(void)
{
	int net = open("/proc/self/ns/net", O_RDONLY), owner;
	struct stat o, u;

	if (net < 0)
		return fail_errno("open ns/net"), 0;
	owner = ioctl(net, NS_GET_USERNS);
	close(net);
	if (owner < 0 || fstat(owner, &o) || stat("/proc/self/ns/user", &u))
		return fail_errno("NS_GET_USERNS"), 0;
	close(owner);
	if (o.st_ino != u.st_ino)
		return fail("the network namespace is owned by user namespace %lu, not by its "
			    "own %lu", (unsigned long)o.st_ino, (unsigned long)u.st_ino), 0;
	return 1;
}

static int listener(struct sockaddr_in *sin)
{
	socklen_t len = sizeof(*sin);
	int l = socket(AF_INET, SOCK_STREAM, 0);

	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (l < 0 || bind(l, (void *)sin, sizeof(*sin)) || listen(l, 8) ||
	    getsockname(l, (void *)sin, &len))
		return -1;
	return l;
}

static int connect_to(const struct sockaddr_in *sin)
{
	int c = socket(AF_INET, SOCK_STREAM, 0);

	if (c < 0 || connect(c, (const void *)sin, sizeof(*sin)))
		return -1;
	return c;
}

static int expect(int fd, const char *what)
{
	char buf[64] = "";
	size_t n = strlen(what);

	if (read(fd, buf, n) != (ssize_t)n || memcmp(buf, what, n))
		return fail("read '%.*s', not '%s'", (int)n, buf, what), -1;
	return 0;
}

int main(int argc, char **argv)
{
	struct ifreq ifr = { 0 };
	struct sockaddr_in sin = { 0 };
	int l, c, a, c2, a2, us[2];

	test_init(argc, argv);
	if (!net_owned_by_user())
		return 1;
	/* A new namespace's lo is down. */
	if (lo_ioctl(SIOCGIFFLAGS, &ifr))
		return fail_errno("SIOCGIFFLAGS"), 1;
	ifr.ifr_flags |= IFF_UP;
	if (lo_ioctl(SIOCSIFFLAGS, &ifr) || set_mtu(SAVED_MTU))
		return fail_errno("lo up with MTU %d", SAVED_MTU), 1;
	l = listener(&sin);
	c = l < 0 ? -1 : connect_to(&sin);
	a = c < 0 ? -1 : accept(l, NULL, NULL);
	if (a < 0)
		return fail_errno("a TCP connection over lo"), 1;
	if (write(c, "to-server", 9) != 9 || write(a, "to-client", 9) != 9)
		return fail_errno("queueing bytes"), 1;
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, us) || write(us[0], "unix", 4) != 4)
		return fail_errno("a unix pair"), 1;

	test_daemon();
	test_waitsig();

	if (!net_owned_by_user())
		return 1;
	if (get_mtu() != SAVED_MTU)
		return fail("lo's MTU is %d, not %d", get_mtu(), SAVED_MTU), 1;
	/* CAP_NET_ADMIN over its own network namespace. */
	if (set_mtu(LATER_MTU) || get_mtu() != LATER_MTU)
		return fail_errno("setting lo's MTU after the restore"), 1;
	if (expect(a, "to-server") || expect(c, "to-client") || expect(us[1], "unix"))
		return 1;
	if (write(c, "again", 5) != 5 || expect(a, "again"))
		return fail_errno("the connection after the restore"), 1;
	c2 = connect_to(&sin);
	a2 = c2 < 0 ? -1 : accept(l, NULL, NULL);
	if (a2 < 0 || write(a2, "new", 3) != 3 || expect(c2, "new"))
		return fail_errno("a new connection to the listener"), 1;
	pass();
	return 0;
}
