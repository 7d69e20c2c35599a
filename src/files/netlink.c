// SPDX-License-Identifier: MIT
/*
 * Netlink sockets (AF_NETLINK), in CRIU's netlink_sk_entry: protocol,
 * port id (0 if never bound), multicast memberships (every group, read
 * with NETLINK_LIST_MEMBERSHIPS, not just the 32 getsockname() shows),
 * the connected peer (port id and group) and the SOL_SOCKET options.
 *
 * Restore: made in amber before the fork, as inet sockets are (the tree
 * shares amber's network namespace): bound to the same port id and the
 * first 32 groups, the other groups joined with NETLINK_ADD_MEMBERSHIP,
 * connected again. A port id taken by then fails the restore, naming it.
 *
 * Refused, naming fd and pid: a socket in a network namespace other than
 * amber's (namespaces.md), a socket with messages queued (a kernel
 * reply or event the task has not read: CRIU 3.x loses them, amber says
 * so instead), and more than 1024 groups.
 */
#define LOG_PREFIX "netlink: "
#include <errno.h>
#include <linux/netlink.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "files/files_internal.h"

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif
#define NL_MAX_GROUP_WORDS 32 /* 1024 groups: no family has half as many */
#define NL_CONNECTED 1

static bool netlink_match(const struct fd_desc *d)
{
	return S_ISSOCK(d->st.st_mode) && d->family == AF_NETLINK;
}

static int netlink_dump(struct files_dump_ctx *fc, const struct fd_desc *d, uint32_t *id)
{
	NetlinkSkEntry ne = NETLINK_SK_ENTRY__INIT;
	FownEntry fown = FOWN_ENTRY__INIT;
	FileEntry fe = FILE_ENTRY__INIT;
	struct files_sk_opts so = {};
	struct sockaddr_nl me = {}, peer = {};
	socklen_t l = sizeof(me), pl = sizeof(peer), gl;
	uint32_t groups[NL_MAX_GROUP_WORDS] = {};
	cleanup_close int sk = files_getfd(d);
	int proto = 0, ret;
	char c;

	if (sk < 0)
		return sk;
	if (!files_same_netns(d->pid)) {
		pr_err("fd %d of pid %d: netlink socket in a network namespace of the tree's own: "
		       "not supported yet\n", d->fd, d->pid);
		return -EOPNOTSUPP;
	}
	gl = sizeof(proto);
	if (getsockopt(sk, SOL_SOCKET, SO_PROTOCOL, &proto, &gl) ||
	    getsockname(sk, (void *)&me, &l) || getpeername(sk, (void *)&peer, &pl)) {
		pr_perror("fd %d of pid %d: netlink socket", d->fd, d->pid);
		return -errno;
	}
	if (recv(sk, &c, 1, MSG_PEEK | MSG_DONTWAIT) >= 0) {
		pr_err("fd %d of pid %d: netlink socket (protocol %d) has messages queued: not "
		       "supported\n", d->fd, d->pid, proto);
		return -EOPNOTSUPP;
	}
	gl = sizeof(groups);
	if (getsockopt(sk, SOL_NETLINK, NETLINK_LIST_MEMBERSHIPS, groups, &gl)) {
		pr_perror("fd %d of pid %d: NETLINK_LIST_MEMBERSHIPS", d->fd, d->pid);
		return -errno;
	}
	if (gl > sizeof(groups)) {
		pr_err("fd %d of pid %d: netlink socket in more than %d groups: not supported\n",
		       d->fd, d->pid, NL_MAX_GROUP_WORDS * 32);
		return -EOPNOTSUPP;
	}
	ret = files_sk_opts_dump(sk, &so);
	if (ret) {
		files_sk_opts_free(&so);
		return ret;
	}
	*id = files_new_id(fc);
	ne.id = *id;
	ne.ino = d->st.st_ino;
	ne.protocol = proto;
	ne.flags = d->flags;
	ne.portid = me.nl_pid;
	/* The bitmap's words up to the last one with a member. */
	for (ne.n_groups = gl / sizeof(uint32_t); ne.n_groups && !groups[ne.n_groups - 1];)
		ne.n_groups--;
	ne.groups = groups;
	ne.dst_portid = peer.nl_pid;
	ne.dst_group = peer.nl_groups ? __builtin_ffs(peer.nl_groups) : 0;
	ne.state = ne.dst_portid || ne.dst_group ? NL_CONNECTED : 0;
	ne.fown = &fown;
	ne.opts = &so.e;
	fe.type = FD_TYPES__NETLINKSK;
	fe.id = *id;
	fe.nlsk = &ne;
	pr_debug("fd %d of pid %d: netlink socket %u protocol %d port %u, %zu group word(s)\n",
		 d->fd, d->pid, ne.ino, proto, ne.portid, ne.n_groups);
	ret = files_write_entry(fc, &fe);
	files_sk_opts_free(&so);
	return ret;
}

/* ---- restore ---- */

static int netlink_check(struct files_rst_ctx *fc, const FileEntry *fe)
{
	const NetlinkSkEntry *e = fe->nlsk;
	bool ok = e && e->protocol < MAX_LINKS && e->n_groups <= NL_MAX_GROUP_WORDS &&
		  e->dst_group <= 32 && (e->state == 0 || e->state == NL_CONNECTED) && e->opts &&
		  files_sk_opts_ok(e->opts);

	(void)fc;
	return files_check_sub(fe, ok, e ? e->id : 0);
}

static int open_nlsk(const NetlinkSkEntry *e)
{
	struct sockaddr_nl a = { .nl_family = AF_NETLINK, .nl_pid = e->portid };
	int sk = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, e->protocol), ret;

	if (sk < 0) {
		pr_perror("netlink socket %u: socket(protocol %u)", e->ino, e->protocol);
		return -errno;
	}
	ret = files_sk_opts_restore(sk, e->opts, "netlink socket", e->ino);
	if (ret)
		goto err;
	if (e->n_groups)
		a.nl_groups = e->groups[0];
	if ((e->portid || a.nl_groups) && bind(sk, (void *)&a, sizeof(a))) {
		ret = -errno;
		pr_perror("netlink socket %u: bind to port id %u", e->ino, e->portid);
		goto err;
	}
	for (size_t w = 1; w < e->n_groups; w++) {
		for (int b = 0; b < 32; b++) {
			unsigned group = w * 32 + b + 1;

			if (!(e->groups[w] & (1u << b)))
				continue;
			if (setsockopt(sk, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &group,
				       sizeof(group))) {
				ret = -errno;
				pr_perror("netlink socket %u: joining group %u", e->ino, group);
				goto err;
			}
		}
	}
	if (e->state == NL_CONNECTED) {
		struct sockaddr_nl p = { .nl_family = AF_NETLINK, .nl_pid = e->dst_portid,
					 .nl_groups = e->dst_group ? 1u << (e->dst_group - 1) : 0 };

		if (connect(sk, (void *)&p, sizeof(p))) {
			ret = -errno;
			pr_perror("netlink socket %u: connect to port id %u", e->ino, e->dst_portid);
			goto err;
		}
	}
	return sk;
err:
	close(sk);
	return ret;
}

static int netlink_prepare(struct files_rst_ctx *fc)
{
	struct files_rst *fr = fc->st;

	for (int i = 0; i < fr->nr_files; i++) {
		struct rfile *rf = &fr->files[i];
		int sk;

		if (rf->fe->type != FD_TYPES__NETLINKSK)
			continue;
		sk = open_nlsk(rf->fe->nlsk);
		if (sk < 0)
			return sk;
		rf->svc_fd = files_move_high(sk, fc->svc_fd_base);
		if (rf->svc_fd < 0)
			return rf->svc_fd;
	}
	return 0;
}

static uint32_t netlink_flags(struct files_rst *fr, const FileEntry *fe)
{
	(void)fr;
	return fe->nlsk->flags;
}

const struct files_type files_netlink_type = {
	.type = FD_TYPES__NETLINKSK,
	.name = "netlink socket",
	.match = netlink_match,
	.dump = netlink_dump,
	.check = netlink_check,
	.prepare = netlink_prepare,
	.flags = netlink_flags,
};
