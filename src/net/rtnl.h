/* SPDX-License-Identifier: MIT */
#ifndef AMBER_RTNL_H
#define AMBER_RTNL_H

/*
 * Raw rtnetlink, for the links, addresses and routes of a network
 * namespace (dump/ns_net.c, restore/ns_net.c). A socket answers for the
 * namespace its creator's thread was in when it was made.
 *
 *   struct rtnl_msg   one request being built: a nlmsghdr, its family
 *                     header, then attributes, in buf[RTNL_MSG_MAX]
 *
 * The images of addresses and routes are iproute2's `ip addr save` /
 * `ip route save` format, which CRIU writes there: a u32 magic (host
 * order: RTNL_ADDR_SAVE_MAGIC, RTNL_ROUTE_SAVE_MAGIC) then the kernel's
 * RTM_NEWADDR or RTM_NEWROUTE messages as the dump gave them, back to
 * back (`ip addr showdump < ifaddr-1.img` reads one).
 */
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <stddef.h>
#include <stdint.h>

#define RTNL_ADDR_SAVE_MAGIC  0x47361222 /* iproute2's ipadd_dump_magic */
#define RTNL_ROUTE_SAVE_MAGIC 0x45311224 /* its route_dump_magic */
#define RTNL_MSG_MAX	4096

struct rtnl_msg {
	union {
		struct nlmsghdr h;
		char buf[RTNL_MSG_MAX];
	};
};

/* A NETLINK_ROUTE socket in the calling thread's network namespace: fd or -errno. */
int rtnl_open(void);

/*
 * Dumps @type (RTM_GETLINK, RTM_GETADDR, RTM_GETROUTE) of @family,
 * calling @each on every message until it returns non-zero (passed on).
 */
int rtnl_dump(int fd, int type, int family,
	      int (*each)(const struct nlmsghdr *h, void *arg), void *arg);

/* Sends @m with NLM_F_ACK and waits for the kernel's answer: 0 or its -errno. */
int rtnl_talk(int fd, struct rtnl_msg *m);
/* The same, calling @each on every answer before the ack (RTM_GETNSID's RTM_NEWNSID). */
int rtnl_talk_cb(int fd, struct rtnl_msg *m, int (*each)(const struct nlmsghdr *h, void *arg),
		 void *arg);

/* Starts @m as a request of @type/@flags with a family header of @hdr_len bytes (zeroed). */
void *rtnl_msg_init(struct rtnl_msg *m, int type, int flags, size_t hdr_len);
/* Appends an attribute; NULL if @m is full. Nests: rtnl_nest_end(m, start). */
struct rtattr *rtnl_put(struct rtnl_msg *m, int type, const void *data, size_t len);
static inline struct rtattr *rtnl_put_u32(struct rtnl_msg *m, int type, uint32_t v)
{
	return rtnl_put(m, type, &v, sizeof(v));
}
static inline struct rtattr *rtnl_nest(struct rtnl_msg *m, int type)
{
	return rtnl_put(m, type, NULL, 0);
}
void rtnl_nest_end(struct rtnl_msg *m, struct rtattr *start);

/* tb[type] = each attribute of @rta (@len bytes) with type <= @max, else NULL. */
void rtnl_parse(struct rtattr **tb, int max, struct rtattr *rta, int len);

#endif
