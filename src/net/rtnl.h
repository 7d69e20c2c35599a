/* SPDX-License-Identifier: MIT */
#ifndef AMBER_RTNL_H
#define AMBER_RTNL_H

/*
 * rtnetlink over libnl-route-3, for the links, addresses and routes of a
 * network namespace (dump/ns_net.c, restore/ns_net.c). A socket answers
 * for the namespace its creator's thread was in when it was made.
 *
 * Links are libnl's rtnl_link objects (read from a link cache, made with
 * rtnl_link_veth). Addresses and routes stay the kernel's own messages:
 * their images are iproute2's `ip addr save` / `ip route save` format,
 * which CRIU writes there: a u32 magic (host order: RTNL_ADDR_SAVE_MAGIC,
 * RTNL_ROUTE_SAVE_MAGIC) then the kernel's RTM_NEWADDR or RTM_NEWROUTE
 * messages as the dump gave them, back to back (`ip addr showdump <
 * ifaddr-1.img` reads one), and a restore sends them back as they are,
 * as `ip ... restore` does. Parsing one into an rtnl_addr or rtnl_route
 * and building it again would drop what libnl does not model.
 *
 * Every call returns 0 or -errno: the kernel's own errno when it refused
 * (its NLMSG_ERROR), else the transport's.
 */
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RTNL_ADDR_SAVE_MAGIC  0x47361222 /* iproute2's ipadd_dump_magic */
#define RTNL_ROUTE_SAVE_MAGIC 0x45311224 /* its route_dump_magic */
#define RTNL_MSG_MAX	4096		 /* the longest saved message a restore sends */

struct nl_sock;
struct rtnl_link;

/* A NETLINK_ROUTE socket in the calling thread's network namespace. */
int rtnl_open(struct nl_sock **sk);
void rtnl_close(struct nl_sock *sk); /* NULL is fine */

/* Every link, in the kernel's order, to @each until it returns non-zero (passed on). */
int rtnl_links(struct nl_sock *sk, int (*each)(struct rtnl_link *link, void *arg), void *arg);

/*
 * Dumps @type (RTM_GETADDR, RTM_GETROUTE) of @family, calling @each on
 * every message as the kernel gave it until it returns non-zero (passed on).
 */
int rtnl_dump(struct nl_sock *sk, int type, int family,
	      int (*each)(const struct nlmsghdr *h, void *arg), void *arg);

/* Route message @h (an rtnl_route) is of the main table, not cloned: 1, 0 or -errno. */
int rtnl_route_in_main(const struct nlmsghdr *h);

/* The id the namespace of @sk gives the namespace of @ns_fd: -1 if none. */
int rtnl_nsid(struct nl_sock *sk, int ns_fd, int32_t *nsid);

/* A veth to make: its end here, its peer in the namespace of @peer_ns_fd. */
struct rtnl_veth {
	uint32_t ifindex;
	const char *name;
	uint32_t mtu;
	const uint8_t *mac; /* NULL: the kernel's */
	size_t mac_len;
	const char *peer_name; /* NULL: the kernel names it */
	int peer_ns_fd;
};

/* Makes @v, both ends down (NLM_F_EXCL: -EEXIST if a name is taken). */
int rtnl_veth_add(struct nl_sock *sk, const struct rtnl_veth *v);

/* Link @ifindex: its flags in @mask set as in @flags, its master if @master, MTU if @mtu. */
int rtnl_set_link(struct nl_sock *sk, int ifindex, uint32_t flags, uint32_t mask, int master,
		  uint32_t mtu);

/* The ifindex of the link of @ifindex (IFLA_LINK: a veth's peer), -ENOENT if none. */
int rtnl_peer_index(struct nl_sock *sk, int ifindex, int *peer);

/* Sends saved message @h (at most RTNL_MSG_MAX bytes) as a new entry (NLM_F_EXCL). */
int rtnl_replay(struct nl_sock *sk, const struct nlmsghdr *h);

#endif
