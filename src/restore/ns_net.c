// SPDX-License-Identifier: MIT
/*
 * The tree's own network namespace (dump/ns_net.c). amber's restoring
 * thread makes it, before the shared files (the tree's sockets are made
 * there) and before it clones the root (born in it):
 *
 *   1. unshare(CLONE_NEWNET); the network lock taken again in it
 *   2. lo's MTU; each veth made again, down, with its ifindex, name,
 *      MTU and MAC, its peer in amber's namespace named by the caller
 *      (--external veth[IN]:OUT[@BRIDGE]) or by the kernel
 *   3. the addresses of ifaddr-ID.img but lo's 127.0.0.1/8 and ::1 (the
 *      kernel's, made again as lo comes up; IPv6 ones other than
 *      link-local without DAD: they were in use), then the links up as
 *      they were, then route-ID.img and route6-ID.img; what the kernel
 *      made already (EEXIST) is skipped, as `ip ... restore` does
 *   4. the peers up in amber's namespace, on their bridge if named
 *
 * One owned by the tree's user namespace is made with it before (ns_user.c):
 * step 1 enters it instead, the rest is the same (amber, root of the
 * parent user namespace, holds every capability in it).
 *
 * An external namespace (netns-ID.img with an ext_key: a container
 * engine's) is not made: the thread enters the one the caller gives as
 * the inherit_fd of that key, where the engine has set up the links,
 * and the lock is taken again there.
 *
 * The thread stays there while the tree is made (netlock_unlock() runs
 * there) and goes back at the end (rst_net_leave()).
 */
#define LOG_PREFIX "ns: "
#include <errno.h>
#include <fcntl.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netlink/attr.h>
#include <netlink/msg.h>
#include <sched.h>
#include <linux/nsfs.h>
#include <sys/ioctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "amber.h"
#include "base/log.h"
#include "base/netns.h"
#include "base/util.h"
#include "image/image.h"
#include "net/rtnl.h"
#include "restore/ns.h"
#include "restore/restore.h"
#include "netdev.pb-c.h"

#define LINK_FLAGS (IFF_UP | IFF_NOARP | IFF_PROMISC | IFF_ALLMULTI | IFF_MULTICAST)

static const enum img_type rtnl_imgs[RST_NET_NR_SAVES] = { IMG_IFADDR, IMG_ROUTE, IMG_ROUTE6 };

/* An `ip ... save` image: its magic, then whole messages of @type, each fitting a request. */
static int check_save(const char *name, const char *p, size_t len, int type)
{
	uint32_t magic = type == RTM_NEWADDR ? RTNL_ADDR_SAVE_MAGIC : RTNL_ROUTE_SAVE_MAGIC;

	if (len < sizeof(uint32_t) || *(const uint32_t *)p != magic) {
		pr_err("%s: not an iproute2 save (no magic)\n", name);
		return -EINVAL;
	}
	for (size_t at = sizeof(uint32_t); at < len;) {
		struct nlmsghdr h;

		if (len - at < sizeof(h)) {
			pr_err("%s: cut at byte %zu\n", name, at);
			return -EINVAL;
		}
		memcpy(&h, p + at, sizeof(h));
		if (h.nlmsg_len < NLMSG_LENGTH(8) || h.nlmsg_len > len - at ||
		    h.nlmsg_len > RTNL_MSG_MAX || h.nlmsg_type != type) {
			pr_err("%s: message at byte %zu is malformed\n", name, at);
			return -EINVAL;
		}
		at += NLMSG_ALIGN(h.nlmsg_len);
	}
	return 0;
}

static int load_saves(struct rst_net *net, int dirfd)
{
	static const int types[RST_NET_NR_SAVES] = { RTM_NEWADDR, RTM_NEWROUTE, RTM_NEWROUTE };

	for (int i = 0; i < RST_NET_NR_SAVES; i++) {
		char name[64];
		int ret;

		img_name(rtnl_imgs[i], net->id, name, sizeof(name));
		net->save[i] = read_file_at(dirfd, name, &net->save_len[i]);
		if (!net->save[i] && errno == ENOENT)
			continue; /* an older dump: lo alone */
		if (!net->save[i]) {
			pr_perror("can't read %s", name);
			return -errno;
		}
		ret = check_save(name, net->save[i], net->save_len[i], types[i]);
		if (ret)
			return ret;
	}
	return 0;
}

static int check_link(struct rst_net *net, const NetDeviceEntry *nd)
{
	bool lo = nd->type == ND_TYPE__LOOPBACK;

	if ((nd->type != ND_TYPE__LOOPBACK && nd->type != ND_TYPE__VETH) ||
	    strlen(nd->name) >= IFNAMSIZ || !nd->name[0] || (lo && strcmp(nd->name, "lo"))) {
		pr_err("netdev-%u.img: link %s (type %d): amber makes a loopback and veths\n",
		       net->id, nd->name, nd->type);
		return -EINVAL;
	}
	/* CRIU names lo its own peer (peer_nsid: this namespace): nothing to make. */
	if (!lo && nd->has_peer_nsid) {
		pr_err("netdev-%u.img: veth %s has its peer in a namespace of the dump: not "
		       "supported\n", net->id, nd->name);
		return -EINVAL;
	}
	for (size_t i = 0; i < net->nr; i++)
		if ((lo && net->links[i]->type == ND_TYPE__LOOPBACK) ||
		    !strcmp(net->links[i]->name, nd->name) || net->links[i]->ifindex == nd->ifindex) {
			pr_err("netdev-%u.img: link %s twice\n", net->id, nd->name);
			return -EINVAL;
		}
	return 0;
}

int rst_ns_load_net(struct rst_ctx *rc, uint32_t id)
{
	struct rst_net *net = &rc->ns.net;
	struct img *img = img_open(rc->dirfd, IMG_NETDEV, false, id);
	NetDeviceEntry *nd;
	int ret;

	if (!img) {
		pr_err("netdev-%u.img (named by core-%d.img) can't be read\n", id, rc->tasks[0].pid);
		return -errno ? -errno : -EINVAL;
	}
	net->id = id;
	while ((ret = img_read_msg(img, &net_device_entry__descriptor,
				   (ProtobufCMessage **)&nd)) == 1) {
		NetDeviceEntry **v = realloc(net->links, (net->nr + 1) * sizeof(*v));

		if (v)
			net->links = v;
		ret = v ? check_link(net, nd) : -ENOMEM;
		if (ret) {
			net_device_entry__free_unpacked(nd, NULL);
			break;
		}
		net->links[net->nr++] = nd;
	}
	img_close(img);
	if (!ret && !net->nr) {
		pr_err("netdev-%u.img: no link\n", id);
		ret = -EINVAL;
	}
	return ret ? ret : load_saves(net, rc->dirfd);
}

int rst_ns_load_net_external(struct rst_ctx *rc, uint32_t id)
{
	struct rst_net *net = &rc->ns.net;
	NetnsEntry *ne;
	int ret = img_read_one(rc->dirfd, IMG_NETNS, id, &netns_entry__descriptor,
			       (ProtobufCMessage **)&ne);

	if (ret) {
		pr_err("netns-%u.img (named by core-%d.img) can't be read\n", id,
		       rc->tasks[0].pid);
		return ret;
	}
	/* CRIU's, of a namespace it made: its sysctls only, which amber does not keep. */
	if (!ne->ext_key) {
		netns_entry__free_unpacked(ne, NULL);
		return 0;
	}
	net->id = id;
	net->ext_key = strdup(ne->ext_key);
	netns_entry__free_unpacked(ne, NULL);
	if (!net->ext_key)
		return -ENOMEM;
	net->ext_fd = -1;
	for (size_t i = 0; i < rc->opts->nr_inherit_fds; i++)
		if (!strcmp(rc->opts->inherit_fds[i].key, net->ext_key))
			net->ext_fd = rc->opts->inherit_fds[i].fd;
	if (net->ext_fd < 0) {
		pr_err("the tree's network namespace was external (key %s): give the one to "
		       "restore it in as --inherit-fd fd[N]:%s\n", net->ext_key, net->ext_key);
		return -EINVAL;
	}
	ret = ioctl(net->ext_fd, NS_GET_NSTYPE);
	if (ret != CLONE_NEWNET) {
		pr_err("inherit fd %d (key %s) is not a network namespace%s\n", net->ext_fd,
		       net->ext_key, ret < 0 ? strerror(errno) : "");
		return -EINVAL;
	}
	pr_info("network namespace %u: external (%s), given as fd %d\n", id, net->ext_key,
		net->ext_fd);
	return 0;
}

void rst_net_free(struct rst_net *net)
{
	for (size_t i = 0; i < net->nr; i++)
		net_device_entry__free_unpacked(net->links[i], NULL);
	free(net->links);
	for (int i = 0; i < RST_NET_NR_SAVES; i++)
		free(net->save[i]);
	free(net->ext_key);
	memset(net, 0, sizeof(*net));
}

/* The caller's name for the host end of veth @in, if any. */
static const struct rst_veth *veth_opt(const struct rst_ctx *rc, const char *in)
{
	for (size_t i = 0; i < rc->opts->nr_veths; i++)
		if (!strcmp(rc->opts->veths[i].in, in))
			return &rc->opts->veths[i];
	return NULL;
}

/* One veth, down, in this namespace; its peer (down) in amber's, @host_fd. */
static int make_veth(struct nl_sock *nl, int host_fd, const NetDeviceEntry *nd, const char *out)
{
	const struct rtnl_veth v = {
		.ifindex = nd->ifindex,
		.name = nd->name,
		.mtu = nd->mtu,
		.mac = nd->has_address ? nd->address.data : NULL,
		.mac_len = nd->address.len,
		.peer_name = out,
		.peer_ns_fd = host_fd,
	};

	return rtnl_veth_add(nl, &v);
}

/*
 * The peer's name may still be held by the veth of the dumped tree: its
 * namespace is freed by the kernel after the tree is gone, a moment
 * later. Wait for it a little (3 s), then give up naming it.
 */
static int make_veth_retry(struct nl_sock *nl, int host_fd, const NetDeviceEntry *nd,
			   const char *out)
{
	struct timespec pause = { 0, 50 * 1000 * 1000 };
	int ret;

	for (int i = 0; i < 60; i++) {
		ret = make_veth(nl, host_fd, nd, out);
		if (ret != -EEXIST || !out)
			break;
		nanosleep(&pause, NULL);
	}
	if (ret)
		pr_err("can't make veth %s (peer %s in amber's namespace): %s\n", nd->name,
		       out ? out : "named by the kernel", strerror(-ret));
	return ret;
}

static int make_links(struct rst_ctx *rc, struct nl_sock *nl)
{
	struct rst_net *net = &rc->ns.net;

	for (size_t i = 0; i < net->nr; i++) {
		const NetDeviceEntry *nd = net->links[i];
		const struct rst_veth *v;
		int ret;

		if (nd->type == ND_TYPE__LOOPBACK) {
			ret = rtnl_set_link(nl, 1, 0, 0, 0, nd->mtu);
			if (ret) {
				pr_err("can't set the MTU of lo: %s\n", strerror(-ret));
				return ret;
			}
			continue;
		}
		v = veth_opt(rc, nd->name);
		if (!v)
			pr_warn("veth %s: no --external veth[%s]:NAME, the kernel names its peer\n",
				nd->name, nd->name);
		ret = make_veth_retry(nl, net->host_fd, nd, v ? v->out : NULL);
		if (ret)
			return ret;
	}
	return 0;
}

/*
 * An IPv6 address in use before the dump skips duplicate address
 * detection: a tentative one could not be bound by the restored
 * sockets. Not the kernel's own (::1, link-local): it makes them again
 * as it did, and they keep their flags.
 */
static bool v6_needs_nodad(const struct ifaddrmsg *ifa, const struct nlattr *addr)
{
	const struct in6_addr *a = addr ? nla_data(addr) : NULL;

	if (ifa->ifa_family != AF_INET6 || !a || nla_len(addr) < (int)sizeof(*a))
		return false;
	return !IN6_IS_ADDR_LOOPBACK(a) && !IN6_IS_ADDR_LINKLOCAL(a);
}

/* 127.0.0.1 and ::1: lo gets them from the kernel as it comes up, as it did. */
static bool kernels_own(const struct ifaddrmsg *ifa, const struct nlattr *addr)
{
	static const uint8_t v4[4] = { 127, 0, 0, 1 };

	if (!addr)
		return false;
	if (ifa->ifa_family == AF_INET)
		return nla_len(addr) == 4 && !memcmp(nla_data(addr), v4, 4) &&
		       ifa->ifa_prefixlen == 8;
	return ifa->ifa_family == AF_INET6 && nla_len(addr) == 16 &&
	       IN6_IS_ADDR_LOOPBACK((const struct in6_addr *)nla_data(addr));
}

/* Sends every message of saved image @i (EEXIST: the kernel made it already). */
static int replay_save(struct rst_net *net, struct nl_sock *nl, int i)
{
	const char *p = net->save[i];
	char name[64];

	img_name(rtnl_imgs[i], net->id, name, sizeof(name));
	for (size_t at = p ? sizeof(uint32_t) : 0; p && at < net->save_len[i];) {
		union {
			struct nlmsghdr h;
			char buf[RTNL_MSG_MAX];
		} m;
		int ret;

		/* check_save() saw every length fit. */
		memcpy(m.buf, p + at, ((const struct nlmsghdr *)(p + at))->nlmsg_len);
		at += NLMSG_ALIGN(m.h.nlmsg_len);
		if (m.h.nlmsg_type == RTM_NEWADDR) {
			struct ifaddrmsg *ifa = NLMSG_DATA(&m.h);
			struct nlattr *addr = nlmsg_find_attr(&m.h, sizeof(*ifa), IFA_ADDRESS);
			struct nlattr *flags = nlmsg_find_attr(&m.h, sizeof(*ifa), IFA_FLAGS);

			if (kernels_own(ifa, addr))
				continue;
			if (v6_needs_nodad(ifa, addr) && flags && nla_len(flags) >= 4)
				*(uint32_t *)nla_data(flags) |= IFA_F_NODAD;
			else if (v6_needs_nodad(ifa, addr))
				ifa->ifa_flags |= IFA_F_NODAD;
		}
		ret = rtnl_replay(nl, &m.h);
		if (ret && ret != -EEXIST) {
			pr_err("%s: the kernel refused the entry ending at byte %zu: %s\n", name, at,
			       strerror(-ret));
			return ret;
		}
	}
	return 0;
}

static int links_up(struct rst_ctx *rc, struct nl_sock *nl)
{
	struct rst_net *net = &rc->ns.net;

	for (size_t i = 0; i < net->nr; i++) {
		const NetDeviceEntry *nd = net->links[i];
		int ret = rtnl_set_link(nl, nd->type == ND_TYPE__LOOPBACK ? 1 : (int)nd->ifindex,
				   nd->flags, LINK_FLAGS, 0, 0);

		if (ret) {
			pr_err("can't set the flags of %s: %s\n", nd->name, strerror(-ret));
			return ret;
		}
	}
	return 0;
}

/* The peers, in amber's namespace (@host_nl): up, on their bridge. */
static int peers_up(struct rst_ctx *rc, struct nl_sock *nl, struct nl_sock *host_nl,
		    const int *bridges)
{
	struct rst_net *net = &rc->ns.net;

	for (size_t i = 0, v = 0; i < net->nr; i++) {
		const NetDeviceEntry *nd = net->links[i];
		int peer, ret;

		if (nd->type != ND_TYPE__VETH)
			continue;
		ret = rtnl_peer_index(nl, nd->ifindex, &peer);
		if (!ret)
			ret = rtnl_set_link(host_nl, peer, IFF_UP, IFF_UP, bridges[v++], 0);
		if (ret) {
			pr_err("can't bring up the peer of veth %s: %s\n", nd->name, strerror(-ret));
			return ret;
		}
		pr_info("veth %s restored, its peer ifindex %d in amber's namespace\n", nd->name,
			peer);
	}
	return 0;
}

/* The bridges named for the veths, in order, looked up in amber's namespace. */
static int find_bridges(struct rst_ctx *rc, int *bridges)
{
	struct rst_net *net = &rc->ns.net;

	for (size_t i = 0, v = 0; i < net->nr; i++) {
		const struct rst_veth *o = veth_opt(rc, net->links[i]->name);

		if (net->links[i]->type != ND_TYPE__VETH)
			continue;
		bridges[v] = o && o->bridge ? (int)if_nametoindex(o->bridge) : 0;
		if (o && o->bridge && !bridges[v]) {
			pr_err("veth %s: no bridge %s in amber's network namespace\n", o->in,
			       o->bridge);
			return -ENOENT;
		}
		v++;
	}
	return 0;
}

static int setup_inside(struct rst_ctx *rc, struct nl_sock *host_nl, const int *bridges)
{
	struct nl_sock *nl;
	int ret = rtnl_open(&nl);

	if (ret)
		return ret;
	ret = make_links(rc, nl);
	if (!ret)
		ret = replay_save(&rc->ns.net, nl, 0);
	if (!ret)
		ret = links_up(rc, nl);
	for (int i = 1; !ret && i < RST_NET_NR_SAVES; i++)
		ret = replay_save(&rc->ns.net, nl, i);
	if (!ret)
		ret = peers_up(rc, nl, host_nl, bridges);
	rtnl_close(nl);
	return ret;
}

/* The caller's namespace, links and all: entered, locked again. */
static int enter_external(struct rst_ctx *rc)
{
	struct rst_net *net = &rc->ns.net;

	net->host_fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (net->host_fd < 0 || setns(net->ext_fd, CLONE_NEWNET)) {
		int ret = -errno;

		pr_perror("can't enter the network namespace given as %s", net->ext_key);
		if (net->host_fd >= 0)
			close(net->host_fd);
		return ret;
	}
	net->entered = true;
	/* It may be the one the dump locked (an inode number tells nothing: reused). */
	return netlock_relock(&rc->netlock, true);
}

int rst_net_enter(struct rst_ctx *rc)
{
	struct rst_net *net = &rc->ns.net;
	cleanup_free int *bridges = calloc(net->nr + 1, sizeof(*bridges));
	struct nl_sock *host_nl;
	int ret;

	if (net->ext_key)
		return enter_external(rc);
	if (!net->nr)
		return 0;
	if (!bridges)
		return -ENOMEM;
	ret = find_bridges(rc, bridges);
	if (ret)
		return ret;
	ret = rtnl_open(&host_nl);
	if (ret)
		return ret;
	net->host_fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (net->host_fd < 0 ||
	    (net->made ? setns(net->made_fd, CLONE_NEWNET) : unshare(CLONE_NEWNET))) {
		ret = -errno;
		pr_perror("can't %s a network namespace", net->made ? "enter" : "make");
		if (net->host_fd >= 0)
			close(net->host_fd);
		rtnl_close(host_nl);
		return ret;
	}
	net->entered = true;
	/* Before any link is up: no peer may reach a socket not yet repaired. */
	ret = netlock_relock(&rc->netlock, false);
	if (!ret)
		ret = setup_inside(rc, host_nl, bridges);
	rtnl_close(host_nl);
	if (!ret)
		pr_info("network namespace %u: %zu link(s) made\n", net->id, net->nr);
	return ret;
}

int rst_net_leave(struct rst_ctx *rc)
{
	if (!rc->ns.net.entered)
		return 0;
	rc->ns.net.entered = false;
	return netns_return(rc->ns.net.host_fd);
}
