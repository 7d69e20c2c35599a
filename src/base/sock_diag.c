// SPDX-License-Identifier: MIT
/* sock_diag requests over libnl-3 (sock_diag.h). */
#define LOG_PREFIX "sock_diag: "
#include <errno.h>
#include <linux/sock_diag.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <string.h>

#include "base/log.h"
#include "base/sock_diag.h"

/* A dump's datagrams are at most 32 KiB (the kernel's cap): never truncated, no MSG_PEEK. */
#define SOCK_DIAG_BUF (64 << 10)

struct request {
	unsigned int seq;
	int (*each)(const struct nlmsghdr *h, void *arg);
	void *arg;
	int ret;	/* @each's first non-zero value */
	int kernel_err; /* NLMSG_ERROR's, or a dump's NLMSG_DONE's */
};

int libnl_errno(int err)
{
	switch (-err) {
	case NLE_NOMEM: return -ENOMEM;
	case NLE_EXIST: return -EEXIST;
	case NLE_OBJ_NOTFOUND: return -ENODEV;
	case NLE_INVAL: return -EINVAL;
	case NLE_RANGE: return -ERANGE;
	case NLE_OPNOTSUPP: return -EOPNOTSUPP;
	case NLE_BUSY: return -EBUSY;
	case NLE_MSGSIZE: return -EMSGSIZE;
	case NLE_DUMP_INTR: return -EINTR;
	case NLE_MSG_TRUNC: return -EMSGSIZE;
	case NLE_SEQ_MISMATCH: return -EPROTO;
	case NLE_PERM: return -EPERM;
	case NLE_NOACCESS: return -EACCES;
	case NLE_AGAIN: return -EAGAIN;
	case NLE_BAD_SOCK: return -EBADF;
	case NLE_PROTO_MISMATCH: return -EPROTONOSUPPORT;
	case NLE_MSG_OVERFLOW: return -ENOBUFS;
	default: return -EIO;
	}
}

/* Answers to an earlier request (none should be left) are not this one's. */
static int check_seq(struct nl_msg *msg, void *arg)
{
	struct request *r = arg;

	return nlmsg_hdr(msg)->nlmsg_seq == r->seq ? NL_OK : NL_SKIP;
}

static int on_valid(struct nl_msg *msg, void *arg)
{
	struct request *r = arg;
	const struct nlmsghdr *h = nlmsg_hdr(msg);

	/* After @each stopped, read on to NLMSG_DONE: the socket is reused. */
	if (!r->ret && !r->kernel_err && h->nlmsg_type == SOCK_DIAG_BY_FAMILY)
		r->ret = r->each(h, r->arg);
	return NL_OK;
}

/* A dump the kernel cut short says why in NLMSG_DONE's payload. */
static int on_finish(struct nl_msg *msg, void *arg)
{
	struct request *r = arg;
	const struct nlmsghdr *h = nlmsg_hdr(msg);

	if (h->nlmsg_len >= NLMSG_LENGTH(sizeof(int)) && *(int *)NLMSG_DATA(h) < 0)
		r->kernel_err = *(int *)NLMSG_DATA(h);
	return NL_STOP;
}

static int on_error(struct sockaddr_nl *nla, struct nlmsgerr *e, void *arg)
{
	struct request *r = arg;

	r->kernel_err = e->error;
	return NL_STOP;
}

static int sock_diag_open(struct sock_diag *sd)
{
	struct nl_sock *sk = nl_socket_alloc();
	int err;

	if (!sk)
		return -ENOMEM;
	/* No NLM_F_ACK: a lookup's answer is its one reply, a dump ends in NLMSG_DONE. */
	nl_socket_disable_auto_ack(sk);
	err = nl_connect(sk, NETLINK_SOCK_DIAG);
	if (!err)
		err = nl_socket_set_msg_buf_size(sk, SOCK_DIAG_BUF);
	if (err) {
		pr_err("can't open a sock_diag socket: %s\n", nl_geterror(err));
		nl_socket_free(sk);
		return libnl_errno(err);
	}
	nl_socket_disable_msg_peek(sk);
	sd->sk = sk;
	return 0;
}

void sock_diag_close(struct sock_diag *sd)
{
	nl_socket_free(sd->sk); /* closes its fd; NULL is fine */
	sd->sk = NULL;
}

int sock_diag_request(struct sock_diag *sd, const void *req, size_t len, bool dump,
		      int (*each)(const struct nlmsghdr *h, void *arg), void *arg)
{
	struct request r = { .each = each, .arg = arg };
	struct nl_msg *msg;
	struct nl_cb *cb;
	int err;

	if (!sd->sk && (err = sock_diag_open(sd)))
		return err;
	cb = nl_cb_alloc(NL_CB_DEFAULT);
	msg = nlmsg_alloc_simple(SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | (dump ? NLM_F_DUMP : 0));
	if (!cb || !msg || nlmsg_append(msg, (void *)req, len, NLMSG_ALIGNTO) < 0) {
		err = -NLE_NOMEM;
		goto out;
	}
	r.seq = nlmsg_hdr(msg)->nlmsg_seq = nl_socket_use_seq(sd->sk);
	nl_cb_set(cb, NL_CB_SEQ_CHECK, NL_CB_CUSTOM, check_seq, &r);
	nl_cb_set(cb, NL_CB_VALID, NL_CB_CUSTOM, on_valid, &r);
	nl_cb_set(cb, NL_CB_FINISH, NL_CB_CUSTOM, on_finish, &r);
	nl_cb_err(cb, NL_CB_CUSTOM, on_error, &r);
	err = nl_send_auto(sd->sk, msg);
	if (err >= 0)
		err = nl_recvmsgs(sd->sk, cb);
out:
	nlmsg_free(msg);
	nl_cb_put(cb);
	if (r.kernel_err)
		return r.kernel_err;
	if (err < 0) {
		pr_err("sock_diag request: %s\n", nl_geterror(err));
		/* Out of step with the kernel: the next request opens a new socket. */
		sock_diag_close(sd);
		return libnl_errno(err);
	}
	return r.ret;
}
