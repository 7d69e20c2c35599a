// SPDX-License-Identifier: MIT
/*
 * The tree's own network namespace: saved when it holds only its loopback
 * (up or down, its own 127.0.0.1 and ::1) and no inet or abstract unix
 * socket; anything else fails the dump, named (links, addresses and the
 * sockets in them are not saved yet).
 */
#define LOG_PREFIX "ns: "
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/log.h"
#include "dump/dump.h"
#include "dump/ns.h"
#include "image/image.h"
#include "netdev.pb-c.h"

struct net_probe {
	int err;
	char busy[160]; /* the first thing amber can't restore, or "" */
	uint32_t lo_index, lo_flags, lo_mtu;
};

static bool loopback_addr(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return ((const struct sockaddr_in *)sa)->sin_addr.s_addr == htonl(INADDR_LOOPBACK);
	if (sa->sa_family == AF_INET6)
		return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)sa)->sin6_addr);
	return true; /* AF_PACKET: the link itself */
}

static void probe(int nsfd, struct net_probe *p)
{
	struct ifaddrs *ifa, *i;
	struct ifreq ifr = { .ifr_name = "lo" };
	int sk;

	if (setns(nsfd, CLONE_NEWNET) || getifaddrs(&ifa)) {
		p->err = -errno;
		return;
	}
	for (i = ifa; i && !p->busy[0]; i = i->ifa_next) {
		char addr[INET6_ADDRSTRLEN] = "?";

		if (strcmp(i->ifa_name, "lo")) {
			snprintf(p->busy, sizeof(p->busy), "link %.32s", i->ifa_name);
		} else if (i->ifa_addr && !loopback_addr(i->ifa_addr)) {
			const void *a = i->ifa_addr->sa_family == AF_INET ?
				(const void *)&((struct sockaddr_in *)i->ifa_addr)->sin_addr :
				(const void *)&((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr;

			inet_ntop(i->ifa_addr->sa_family, a, addr, sizeof(addr));
			snprintf(p->busy, sizeof(p->busy), "address %s on lo", addr);
		}
	}
	freeifaddrs(ifa);
	sk = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (sk < 0 || ioctl(sk, SIOCGIFFLAGS, &ifr) < 0) {
		p->err = -errno;
	} else {
		p->lo_flags = (uint16_t)ifr.ifr_flags;
		if (ioctl(sk, SIOCGIFMTU, &ifr) < 0)
			p->err = -errno;
		p->lo_mtu = ifr.ifr_mtu;
		p->lo_index = if_nametoindex("lo");
	}
	if (sk >= 0)
		close(sk);
}

static int probe_ns(pid_t root, struct net_probe *p)
{
	char path[64];
	int pfd[2], nsfd, st;
	pid_t child;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/ns/net", root);
	nsfd = open(path, O_RDONLY | O_CLOEXEC);
	if (nsfd < 0) {
		pr_perror("can't open %s", path);
		return -errno;
	}
	if (pipe2(pfd, O_CLOEXEC)) {
		close(nsfd);
		return -errno;
	}
	child = fork();
	if (child == 0) {
		struct net_probe mine = { 0 };

		close(pfd[0]);
		probe(nsfd, &mine);
		_exit(write(pfd[1], &mine, sizeof(mine)) == sizeof(mine) ? 0 : 1);
	}
	close(nsfd);
	close(pfd[1]);
	n = child > 0 ? read(pfd[0], p, sizeof(*p)) : -1;
	close(pfd[0]);
	if (child > 0)
		waitpid(child, &st, 0);
	if (n != sizeof(*p)) {
		pr_err("can't look into the network namespace of %d\n", root);
		return -EIO;
	}
	if (p->err)
		pr_err("can't look into the network namespace of %d: %s\n", root,
		       strerror(-p->err));
	return p->err;
}

/*
 * /proc/PID/net shows the sockets of PID's network namespace: the whole
 * tree's (it shares the root's). The first one amber would put in the
 * wrong namespace, if any.
 */
static void first_socket(pid_t root, char *busy, size_t len)
{
	static const char *const tables[] = { "tcp", "tcp6", "udp", "udp6", "raw", "raw6" };
	char path[64], line[512];

	for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]) && !busy[0]; i++) {
		FILE *f;

		snprintf(path, sizeof(path), "/proc/%d/net/%s", root, tables[i]);
		f = fopen(path, "re");
		if (!f)
			continue;
		if (fgets(line, sizeof(line), f) && fgets(line, sizeof(line), f))
			snprintf(busy, len, "%s socket (%.60s)", tables[i], strtok(line, "\n"));
		fclose(f);
	}
	snprintf(path, sizeof(path), "/proc/%d/net/unix", root);
	FILE *f = busy[0] ? NULL : fopen(path, "re");

	while (f && fgets(line, sizeof(line), f)) {
		char *at = strchr(line, '@');

		if (at) {
			snprintf(busy, len, "abstract unix socket %.60s", strtok(at, "\n"));
			break;
		}
	}
	if (f)
		fclose(f);
}

int dump_ns_net(struct dump_ctx *dc, pid_t root)
{
	NetDeviceEntry lo = NET_DEVICE_ENTRY__INIT;
	struct net_probe p;
	int ret = probe_ns(root, &p);

	if (ret)
		return ret;
	if (!p.busy[0])
		first_socket(root, p.busy, sizeof(p.busy));
	if (p.busy[0]) {
		pr_err("process %d: its network namespace holds a %s: only a loopback with "
		       "no inet socket is supported yet\n", root, p.busy);
		return -EOPNOTSUPP;
	}
	dc->ns.net_ns_id = dump_new_id(dc);
	lo.type = ND_TYPE__LOOPBACK;
	lo.ifindex = p.lo_index;
	lo.mtu = p.lo_mtu;
	lo.flags = p.lo_flags;
	lo.name = "lo";
	pr_info("network namespace of %d: lo only (%s), netdev-%u.img\n", root,
		p.lo_flags & IFF_UP ? "up" : "down", dc->ns.net_ns_id);
	return img_write_one(dc->dirfd, IMG_NETDEV, dc->ns.net_ns_id, &lo.base);
}
