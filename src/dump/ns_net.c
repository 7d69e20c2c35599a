// SPDX-License-Identifier: MIT
/*
 * The tree's own network namespace, read through rtnetlink from inside
 * it (dump.c moved this thread there for the whole dump):
 *
 *   netdev-ID.img   a net_device_entry per link: its loopback, and veths
 *                   whose peer is in amber's namespace (peer_ifindex,
 *                   no peer_nsid: outside the dump, as CRIU writes it)
 *   ifaddr-ID.img   every address, `ip addr save`'s format (rtnl.h)
 *   route-ID.img, route6-ID.img   the main table, `ip route save`'s
 *
 * Any other link (a bridge, macvlan, tun, a veth pair inside, a veth
 * into a third namespace, an enslaved link) fails the dump, named.
 * A namespace the caller names external (--external net[INO]:KEY: a
 * container engine's, which makes another for the restore) is saved as
 * netns-ID.img with that key alone, whatever links it has. The
 * sockets of the namespace are the files code's: its sock_diag sockets
 * are made in this thread, so they see this namespace.
 */
#define LOG_PREFIX "ns: "
#include <errno.h>
#include <inttypes.h>
#include <net/if_arp.h>
#include <net/if.h>
#include <netlink/route/link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "base/netns.h"
#include "base/util.h"
#include "dump/dump.h"
#include "dump/ns.h"
#include "image/image.h"
#include "net/rtnl.h"
#include "netdev.pb-c.h"

struct net_links {
	pid_t root;
	int32_t host_nsid; /* amber's namespace as the tree's names it */
	NetDeviceEntry *v;
	size_t nr, cap;
	bool lo_seen;
	int err;
};

static int refuse_link(struct net_links *l, const char *name, const char *why)
{
	pr_err("process %d: its network namespace (net:[%" PRIu64 "]) holds link %s, %s: amber "
	       "saves a loopback and veths whose peer is in amber's network namespace\n",
	       l->root, netns_self_ino(), name, why);
	return -EOPNOTSUPP;
}

/* The one link @link describes, checked and added to l->v (peer checked later). */
static int each_link(struct rtnl_link *link, void *arg)
{
	struct net_links *l = arg;
	const char *kind = rtnl_link_get_type(link) ?: "";
	struct nl_addr *mac = rtnl_link_get_addr(link);
	bool lo = rtnl_link_get_arptype(link) == ARPHRD_LOOPBACK;
	NetDeviceEntry *nd;
	char name[IFNAMSIZ + 1] = "?", why[96];
	int32_t peer_nsid;
	bool has_peer_nsid = !rtnl_link_get_link_netnsid(link, &peer_nsid);

	if (rtnl_link_get_name(link))
		snprintf(name, sizeof(name), "%s", rtnl_link_get_name(link));
	if (rtnl_link_get_master(link))
		return refuse_link(l, name, "enslaved to another link");
	if (!lo && strcmp(kind, "veth")) {
		snprintf(why, sizeof(why), "of type %.31s", kind[0] ? kind : "(none: a device)");
		return refuse_link(l, name, why);
	}
	if (lo && (l->lo_seen || strcmp(name, "lo")))
		return refuse_link(l, name, "a second loopback");
	if (!strcmp(kind, "veth") && !has_peer_nsid)
		return refuse_link(l, name, "a veth whose peer is in the same namespace");
	if (l->nr == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 4;
		NetDeviceEntry *v = realloc(l->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	nd = &l->v[l->nr];
	net_device_entry__init(nd);
	nd->name = strdup(name);
	if (!nd->name)
		return -ENOMEM;
	l->nr++;
	nd->ifindex = rtnl_link_get_ifindex(link);
	nd->flags = rtnl_link_get_flags(link);
	nd->mtu = rtnl_link_get_mtu(link);
	if (lo) {
		nd->type = ND_TYPE__LOOPBACK;
		l->lo_seen = true;
		return 0;
	}
	nd->type = ND_TYPE__VETH;
	if (mac) {
		nd->has_address = true;
		nd->address.len = nl_addr_get_len(mac);
		nd->address.data = malloc(nd->address.len);
		if (!nd->address.data)
			return -ENOMEM;
		memcpy(nd->address.data, nl_addr_get_binary_addr(mac), nd->address.len);
	}
	if (rtnl_link_get_link(link)) {
		nd->has_peer_ifindex = true;
		nd->peer_ifindex = rtnl_link_get_link(link);
	}
	/* Checked against amber's once every link is known: the id may be new. */
	nd->has_peer_nsid = true;
	nd->peer_nsid = peer_nsid;
	return 0;
}

static int check_peers(struct net_links *l)
{
	for (size_t i = 0; i < l->nr; i++) {
		NetDeviceEntry *nd = &l->v[i];

		if (nd->type != ND_TYPE__VETH)
			continue;
		if ((int32_t)nd->peer_nsid != l->host_nsid || l->host_nsid < 0)
			return refuse_link(l, nd->name, "a veth whose peer is in a third namespace");
		/* CRIU's images: no peer_nsid means a peer outside the dump. */
		nd->has_peer_nsid = false;
		nd->peer_nsid = 0;
	}
	return 0;
}

/* Raw messages, as `ip ... save` writes them. */
struct save_buf {
	char *p;
	size_t len, cap;
	bool routes; /* keep the main table's, not cloned */
};

static int each_save(const struct nlmsghdr *h, void *arg)
{
	struct save_buf *b = arg;

	if (h->nlmsg_type != RTM_NEWADDR && h->nlmsg_type != RTM_NEWROUTE)
		return 0;
	if (b->routes) {
		int in = rtnl_route_in_main(h);

		if (in <= 0)
			return in;
	}
	if (b->len + h->nlmsg_len > b->cap) {
		size_t cap = max(2 * b->cap, b->len + h->nlmsg_len + 4096);
		char *p = realloc(b->p, cap);

		if (!p)
			return -ENOMEM;
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, h, h->nlmsg_len);
	b->len += h->nlmsg_len;
	return 0;
}

static int save_rtnl(struct dump_ctx *dc, struct nl_sock *nl, enum img_type type, int rtm,
		     int family)
{
	struct save_buf b = { .routes = rtm == RTM_GETROUTE };
	uint32_t magic = rtm == RTM_GETADDR ? RTNL_ADDR_SAVE_MAGIC : RTNL_ROUTE_SAVE_MAGIC;
	struct img *img;
	int ret = rtnl_dump(nl, rtm, family, each_save, &b);

	if (ret) {
		pr_err("can't list the %s of the tree's network namespace: %s\n",
		       img_type_name(type), strerror(-ret));
		free(b.p);
		return ret;
	}
	img = img_open(dc->dirfd, type, true, dc->ns.net_ns_id);
	if (!img) {
		free(b.p);
		return -errno;
	}
	ret = img_write_raw(img, &magic, sizeof(magic));
	if (!ret && b.len)
		ret = img_write_raw(img, b.p, b.len);
	if (img_close(img) && !ret)
		ret = -EIO;
	free(b.p);
	return ret;
}

static int write_links(struct dump_ctx *dc, struct net_links *l)
{
	struct img *img = img_open(dc->dirfd, IMG_NETDEV, true, dc->ns.net_ns_id);
	int ret = 0;

	if (!img)
		return -errno;
	for (size_t i = 0; i < l->nr && !ret; i++) {
		ret = img_write_msg(img, &l->v[i].base);
		pr_info("network namespace of %d: %s %s (ifindex %u, mtu %u, %s)\n", l->root,
			l->v[i].type == ND_TYPE__VETH ? "veth" : "loopback", l->v[i].name,
			l->v[i].ifindex, l->v[i].mtu, l->v[i].flags & IFF_UP ? "up" : "down");
	}
	if (img_close(img) && !ret)
		ret = -EIO;
	return ret;
}

/* The caller's namespace: its key, for the inherit_fd the restore needs. */
static int dump_ns_net_external(struct dump_ctx *dc, pid_t root)
{
	NetnsEntry ne = NETNS_ENTRY__INIT;

	/* The caller's, given at restore: the root's new user namespace can't own it. */
	if (dc->ns.user.owns_netns) {
		pr_err("process %d: its network namespace, named external, is owned by its user "
		       "namespace: not supported (the restore makes a new user namespace)\n", root);
		return -EOPNOTSUPP;
	}
	dc->ns.net_ns_id = dump_new_id(dc);
	dc->ns.amber_net_ns_id = dump_new_id(dc);
	ne.ext_key = (char *)dc->opts->ext_netns_key;
	pr_info("network namespace of %d: external, key %s\n", root, ne.ext_key);
	return img_write_one(dc->dirfd, IMG_NETNS, dc->ns.net_ns_id, &ne.base);
}

int dump_ns_net(struct dump_ctx *dc, pid_t root)
{
	struct net_links l = { .root = root };
	struct nl_sock *nl;
	int ret;

	if (dc->host_netns_fd < 0) {
		pr_err("process %d: amber did not enter its network namespace\n", root);
		return -EINVAL;
	}
	if (dc->opts->ext_netns_key)
		return dump_ns_net_external(dc, root);
	ret = rtnl_open(&nl);
	if (ret)
		return ret;
	ret = rtnl_links(nl, each_link, &l);
	if (ret && ret != -EOPNOTSUPP)
		pr_err("can't list the links of the network namespace of %d: %s\n", root,
		       strerror(-ret));
	if (!ret)
		ret = rtnl_nsid(nl, dc->host_netns_fd, &l.host_nsid);
	if (!ret)
		ret = check_peers(&l);
	if (!ret) {
		dc->ns.net_ns_id = dump_new_id(dc);
		dc->ns.amber_net_ns_id = dump_new_id(dc);
		ret = write_links(dc, &l);
	}
	if (!ret)
		ret = save_rtnl(dc, nl, IMG_IFADDR, RTM_GETADDR, AF_UNSPEC);
	if (!ret)
		ret = save_rtnl(dc, nl, IMG_ROUTE, RTM_GETROUTE, AF_INET);
	if (!ret)
		ret = save_rtnl(dc, nl, IMG_ROUTE6, RTM_GETROUTE, AF_INET6);
	rtnl_close(nl);
	for (size_t i = 0; i < l.nr; i++) {
		free(l.v[i].name);
		free(l.v[i].address.data);
	}
	free(l.v);
	return ret;
}
