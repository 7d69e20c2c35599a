// SPDX-License-Identifier: MIT
/* rtnetlink over libnl-route-3 (rtnl.h). */
#define LOG_PREFIX "rtnl: "
#include <errno.h>
#include <linux/net_namespace.h>
#include <net/if.h>
#include <netlink/attr.h>
#include <netlink/cache.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/route/link.h>
#include <netlink/route/link/veth.h>
#include <netlink/route/route.h>
#include <string.h>
#include <sys/socket.h>

#include "base/log.h"
#include "base/sock_diag.h"
#include "net/rtnl.h"

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

int rtnl_open(struct nl_sock **skp)
{
	struct nl_sock *sk = nl_socket_alloc();
	int one = 1, err;

	*skp = NULL;
	if (!sk)
		return -ENOMEM;
	err = nl_connect(sk, NETLINK_ROUTE);
	if (err) {
		err = libnl_errno(err);
		pr_err("can't open an rtnetlink socket: %s\n", strerror(-err));
		nl_socket_free(sk);
		return err;
	}
	/* The kernel's error says which attribute it did not like. */
	setsockopt(nl_socket_get_fd(sk), SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
	*skp = sk;
	return 0;
}

void rtnl_close(struct nl_sock *sk)
{
	nl_socket_free(sk); /* closes its fd; NULL is fine */
}

/* One request and its answers, to the kernel's ack, error or NLMSG_DONE. */
struct exchange {
	unsigned int seq;
	int (*each)(struct nl_msg *msg, void *arg);
	void *arg;
	int ret;	/* @each's first non-zero value */
	int kernel_err; /* NLMSG_ERROR's, or a dump's NLMSG_DONE's */
	bool done;
};

/* Answers to an earlier request (none should be left) are not this one's. */
static int check_seq(struct nl_msg *msg, void *arg)
{
	struct exchange *x = arg;

	return nlmsg_hdr(msg)->nlmsg_seq == x->seq ? NL_OK : NL_SKIP;
}

static int on_valid(struct nl_msg *msg, void *arg)
{
	struct exchange *x = arg;

	/* After @each stopped, read on to the end: the socket is reused. */
	if (!x->ret && x->each)
		x->ret = x->each(msg, x->arg);
	return NL_OK;
}

static int on_finish(struct nl_msg *msg, void *arg)
{
	struct exchange *x = arg;
	const struct nlmsghdr *h = nlmsg_hdr(msg);

	/* A dump the kernel cut short says why in NLMSG_DONE's payload. */
	if (h->nlmsg_len >= NLMSG_LENGTH(sizeof(int)) && *(int *)NLMSG_DATA(h) < 0)
		x->kernel_err = *(int *)NLMSG_DATA(h);
	x->done = true;
	return NL_STOP;
}

static int on_ack(struct nl_msg *msg, void *arg)
{
	struct exchange *x = arg;

	(void)msg;
	x->done = true;
	return NL_STOP;
}

static int on_error(struct sockaddr_nl *nla, struct nlmsgerr *e, void *arg)
{
	struct exchange *x = arg;

	(void)nla;
	x->kernel_err = e->error ? e->error : -EIO;
	x->done = true;
	return NL_STOP;
}

/*
 * Sends @msg (freed) with NLM_F_ACK and reads every answer, @each on
 * each one that is not an ack or error. libnl's own senders turn the
 * kernel's errno into its codes, not always one to one: amber's messages
 * name the kernel's.
 */
static int exchange(struct nl_sock *sk, struct nl_msg *msg,
		    int (*each)(struct nl_msg *msg, void *arg), void *arg)
{
	struct exchange x = { .each = each, .arg = arg };
	struct nl_cb *cb = nl_cb_alloc(NL_CB_DEFAULT);
	int err;

	if (!cb) {
		nlmsg_free(msg);
		return -ENOMEM;
	}
	nl_cb_set(cb, NL_CB_SEQ_CHECK, NL_CB_CUSTOM, check_seq, &x);
	nl_cb_set(cb, NL_CB_VALID, NL_CB_CUSTOM, on_valid, &x);
	nl_cb_set(cb, NL_CB_FINISH, NL_CB_CUSTOM, on_finish, &x);
	nl_cb_set(cb, NL_CB_ACK, NL_CB_CUSTOM, on_ack, &x);
	nl_cb_err(cb, NL_CB_CUSTOM, on_error, &x);
	err = nl_send_auto(sk, msg);
	x.seq = nlmsg_hdr(msg)->nlmsg_seq;
	nlmsg_free(msg);
	/* A lone answer is not multipart: libnl returns before the ack. */
	while (err >= 0 && !x.done)
		err = nl_recvmsgs(sk, cb);
	nl_cb_put(cb);
	if (x.kernel_err)
		return x.kernel_err;
	if (err < 0)
		return libnl_errno(err);
	return x.ret;
}

int rtnl_links(struct nl_sock *sk, int (*each)(struct rtnl_link *link, void *arg), void *arg)
{
	struct nl_cache *cache;
	int ret = 0, err = rtnl_link_alloc_cache(sk, AF_UNSPEC, &cache);

	if (err < 0)
		return libnl_errno(err);
	/* The cache keeps the dump's order. */
	for (struct nl_object *o = nl_cache_get_first(cache); o && !ret; o = nl_cache_get_next(o))
		ret = each((struct rtnl_link *)o, arg);
	nl_cache_free(cache);
	return ret;
}

struct raw_each {
	int (*each)(const struct nlmsghdr *h, void *arg);
	void *arg;
};

static int each_raw(struct nl_msg *msg, void *arg)
{
	struct raw_each *r = arg;

	return r->each(nlmsg_hdr(msg), r->arg);
}

int rtnl_dump(struct nl_sock *sk, int type, int family,
	      int (*each)(const struct nlmsghdr *h, void *arg), void *arg)
{
	struct rtgenmsg g = { .rtgen_family = family };
	struct nl_msg *msg = nlmsg_alloc_simple(type, NLM_F_DUMP);
	struct raw_each r = { .each = each, .arg = arg };

	if (!msg)
		return -ENOMEM;
	if (nlmsg_append(msg, &g, sizeof(g), NLMSG_ALIGNTO) < 0) {
		nlmsg_free(msg);
		return -ENOMEM;
	}
	return exchange(sk, msg, each_raw, &r);
}

int rtnl_route_in_main(const struct nlmsghdr *h)
{
	struct rtnl_route *r;
	int err = rtnl_route_parse((struct nlmsghdr *)h, &r), in;

	if (err < 0) {
		pr_err("can't parse a route the kernel listed: %s\n", nl_geterror(err));
		return libnl_errno(err);
	}
	in = rtnl_route_get_table(r) == RT_TABLE_MAIN && !(rtnl_route_get_flags(r) & RTM_F_CLONED);
	rtnl_route_put(r);
	return in;
}

static int each_nsid(struct nl_msg *msg, void *arg)
{
	struct nlmsghdr *h = nlmsg_hdr(msg);
	struct nlattr *tb[NETNSA_MAX + 1];

	if (h->nlmsg_type != RTM_NEWNSID ||
	    nlmsg_parse(h, sizeof(struct rtgenmsg), tb, NETNSA_MAX, NULL) < 0)
		return 0;
	if (tb[NETNSA_NSID] && nla_len(tb[NETNSA_NSID]) >= (int)sizeof(int32_t))
		*(int32_t *)arg = nla_get_s32(tb[NETNSA_NSID]);
	return 0;
}

int rtnl_nsid(struct nl_sock *sk, int ns_fd, int32_t *nsid)
{
	struct rtgenmsg g = { .rtgen_family = AF_UNSPEC };
	struct nl_msg *msg = nlmsg_alloc_simple(RTM_GETNSID, 0);

	*nsid = -1;
	if (!msg)
		return -ENOMEM;
	if (nlmsg_append(msg, &g, sizeof(g), NLMSG_ALIGNTO) < 0 ||
	    nla_put_u32(msg, NETNSA_FD, ns_fd) < 0) {
		nlmsg_free(msg);
		return -E2BIG;
	}
	return exchange(sk, msg, each_nsid, nsid);
}

/* Sends the RTM_NEWLINK libnl builds for @link (an add if @flags has NLM_F_CREATE). */
static int send_link(struct nl_sock *sk, struct rtnl_link *link, int flags)
{
	struct nl_msg *msg;
	int err = rtnl_link_build_add_request(link, flags, &msg);

	return err < 0 ? libnl_errno(err) : exchange(sk, msg, NULL, NULL);
}

int rtnl_veth_add(struct nl_sock *sk, const struct rtnl_veth *v)
{
	struct rtnl_link *link, *peer;
	struct nl_addr *mac = NULL;
	int ret;

	/* libnl would cut a long name short; the kernel refuses it. */
	if (strlen(v->name) >= IFNAMSIZ || (v->peer_name && strlen(v->peer_name) >= IFNAMSIZ))
		return -EINVAL;
	link = rtnl_link_veth_alloc();
	if (!link)
		return -ENOMEM;
	peer = rtnl_link_veth_get_peer(link);
	rtnl_link_set_ifindex(link, v->ifindex);
	rtnl_link_set_name(link, v->name);
	rtnl_link_set_mtu(link, v->mtu);
	if (v->mac) {
		mac = nl_addr_build(AF_LLC, v->mac, v->mac_len);
		if (!mac) {
			ret = -ENOMEM;
			goto out;
		}
		rtnl_link_set_addr(link, mac);
	}
	if (v->peer_name)
		rtnl_link_set_name(peer, v->peer_name);
	rtnl_link_set_ns_fd(peer, v->peer_ns_fd);
	ret = send_link(sk, link, NLM_F_CREATE | NLM_F_EXCL);
out:
	if (mac)
		nl_addr_put(mac);
	rtnl_link_put(peer);
	rtnl_link_veth_release(link);
	return ret;
}

int rtnl_set_link(struct nl_sock *sk, int ifindex, uint32_t flags, uint32_t mask, int master,
		  uint32_t mtu)
{
	struct rtnl_link *link = rtnl_link_alloc();
	int ret;

	if (!link)
		return -ENOMEM;
	rtnl_link_set_ifindex(link, ifindex);
	if (mask) {
		rtnl_link_set_flags(link, flags & mask);
		rtnl_link_unset_flags(link, mask & ~flags);
	}
	if (master)
		rtnl_link_set_master(link, master);
	if (mtu)
		rtnl_link_set_mtu(link, mtu);
	ret = send_link(sk, link, 0);
	rtnl_link_put(link);
	return ret;
}

static void link_of(struct nl_object *o, void *arg)
{
	*(int *)arg = rtnl_link_get_link((struct rtnl_link *)o);
}

static int each_link_of(struct nl_msg *msg, void *arg)
{
	if (nlmsg_hdr(msg)->nlmsg_type == RTM_NEWLINK)
		nl_msg_parse(msg, link_of, arg);
	return 0;
}

int rtnl_peer_index(struct nl_sock *sk, int ifindex, int *peer)
{
	struct nl_msg *msg;
	int err = rtnl_link_build_get_request(ifindex, NULL, &msg);

	*peer = 0;
	if (err < 0)
		return libnl_errno(err);
	err = exchange(sk, msg, each_link_of, peer);
	return err ?: (*peer ? 0 : -ENOENT);
}

int rtnl_replay(struct nl_sock *sk, const struct nlmsghdr *h)
{
	struct nl_msg *msg = nlmsg_convert((struct nlmsghdr *)h);
	struct nlmsghdr *n;

	if (!msg)
		return -ENOMEM;
	n = nlmsg_hdr(msg);
	n->nlmsg_flags = NLM_F_CREATE | NLM_F_EXCL;
	/* The dump's: libnl gives the request its own. */
	n->nlmsg_seq = NL_AUTO_SEQ;
	n->nlmsg_pid = NL_AUTO_PORT;
	return exchange(sk, msg, NULL, NULL);
}
