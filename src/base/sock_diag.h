/* SPDX-License-Identifier: MIT */
#ifndef AMBER_SOCK_DIAG_H
#define AMBER_SOCK_DIAG_H

/*
 * sock_diag requests over libnl-3 (NETLINK_SOCK_DIAG): the one place
 * that talks to the kernel's unix_diag, inet_diag, packet_diag and
 * netlink_diag.
 *
 *   struct sock_diag   a libnl socket, made at the first request in the
 *                      calling thread's network namespace (the dump's
 *                      thread is in the tree's: base/netns.h) and kept
 *                      for the next ones; zeroed = not open yet
 *
 * A request is the family's request struct (unix_diag_req,
 * inet_diag_req_v2, packet_diag_req, netlink_diag_req) after a
 * SOCK_DIAG_BY_FAMILY header; every reply is read, to NLMSG_DONE for a
 * dump, so the socket stays in step for the next request.
 */
#include <linux/netlink.h>
#include <stdbool.h>
#include <stddef.h>

struct nl_sock;

struct sock_diag {
	struct nl_sock *sk;
};

/*
 * Sends @req (@len bytes, a dump if @dump) and calls @each on every
 * SOCK_DIAG_BY_FAMILY reply until it returns non-zero: the rest is read
 * and dropped. Returns 0, @each's non-zero value, or -errno: the
 * kernel's (NLMSG_ERROR, or a dump cut short) or the transport's.
 */
int sock_diag_request(struct sock_diag *sd, const void *req, size_t len, bool dump,
		      int (*each)(const struct nlmsghdr *h, void *arg), void *arg);
void sock_diag_close(struct sock_diag *sd);

/*
 * A libnl error code (-NLE_*) as the -errno it stands for, -EIO if none
 * does: for what libnl itself reports (the transport, a cache fill).
 */
int libnl_errno(int nlerr);

#endif
