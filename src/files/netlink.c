// SPDX-License-Identifier: MIT
/*
 * Netlink sockets (AF_NETLINK), in CRIU's netlink_sk_entry: protocol,
 * port id (0 if never bound), multicast memberships (every group, not
 * just the 32 getsockname() shows), the connection state and peer (port
 * id and group) and the SOL_SOCKET options.
 *
 * Read from netlink_diag (NETLINK_SOCK_DIAG, through base/sock_diag.h),
 * as CRIU does, and cross-checked with what the socket itself says
 * (SO_PROTOCOL, getsockname, getpeername, NETLINK_LIST_MEMBERSHIPS): a
 * disagreement fails the dump, naming both. netlink_diag lists bound
 * sockets and those in a group; one it does not list must say it is
 * neither. The state is the kernel's: a socket connected to the kernel
 * (port id 0, no group) is connected, which the peer's address alone
 * does not show.
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
#include <linux/netlink_diag.h>
#include <linux/sock_diag.h>
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
#define NL_NEVER_CONNECTED 7 /* sk_state's TCP_CLOSE: CRIU's images say it */

static bool netlink_match(const struct fd_desc *d)
{
	return S_ISSOCK(d->st.st_mode) && d->family == AF_NETLINK;
}

/* What netlink_diag says of one socket. */
struct nl_diag {
	uint32_t ino;
	bool found;
	uint8_t protocol, state;
	uint32_t portid, dst_portid, dst_group;
	uint32_t groups[NL_MAX_GROUP_WORDS];
	size_t groups_len; /* the kernel's bitmap, in bytes: may be longer than groups */
};

static int nl_diag_each(const struct nlmsghdr *h, void *arg)
{
	struct nl_diag *nd = arg;
	const struct netlink_diag_msg *m = NLMSG_DATA(h);
	int len = (int)h->nlmsg_len - (int)NLMSG_LENGTH(sizeof(*m));
	const struct nlattr *a = (const void *)(m + 1);

	if (len < 0 || m->ndiag_ino != nd->ino)
		return 0;
	nd->found = true;
	nd->protocol = m->ndiag_protocol;
	nd->state = m->ndiag_state;
	nd->portid = m->ndiag_portid;
	nd->dst_portid = m->ndiag_dst_portid;
	nd->dst_group = m->ndiag_dst_group;
	while (len >= (int)sizeof(*a) && a->nla_len >= sizeof(*a) && a->nla_len <= len) {
		if (a->nla_type == NETLINK_DIAG_GROUPS) {
			nd->groups_len = a->nla_len - NLA_HDRLEN;
			memcpy(nd->groups, (const char *)a + NLA_HDRLEN,
			       min(nd->groups_len, sizeof(nd->groups)));
		}
		len -= NLA_ALIGN(a->nla_len);
		a = (const void *)((const char *)a + NLA_ALIGN(a->nla_len));
	}
	return 1;
}

/*
 * netlink_diag answers dumps only: walk the sockets of @proto in the
 * dumping thread's network namespace (the socket's, checked before) for
 * @nd->ino.
 */
static int nl_diag_get(struct files_dump_ctx *fc, int proto, struct nl_diag *nd)
{
	struct netlink_diag_req req = { .sdiag_family = AF_NETLINK, .sdiag_protocol = proto,
					.ndiag_show = NDIAG_SHOW_GROUPS };
	int ret = sock_diag_request(&fc->st->diag, &req, sizeof(req), true, nl_diag_each, nd);

	if (ret < 0)
		pr_err("sock_diag of netlink sockets (is netlink_diag there?): %s\n",
		       strerror(-ret));
	return ret < 0 ? ret : 0;
}

/* Words of @g up to the last one with a member. */
static size_t nl_group_words(const uint32_t *g, size_t words)
{
	while (words && !g[words - 1])
		words--;
	return words;
}

/* What the socket says of itself, read as before netlink_diag was. */
struct nl_self {
	int proto;
	struct sockaddr_nl me, peer;
	uint32_t groups[NL_MAX_GROUP_WORDS];
	size_t n_groups;
};

/* netlink_diag's record @nd of the socket of fd @d against what the socket says, @s. */
static int nl_cross_check(const struct fd_desc *d, const struct nl_diag *nd,
			  const struct nl_self *s)
{
	size_t n = nl_group_words(nd->groups, min(nd->groups_len, sizeof(nd->groups)) / 4);
	const struct {
		const char *what;
		uint32_t diag, self;
	} f[] = {
		{ "protocol", nd->protocol, s->proto },
		{ "port id", nd->portid, s->me.nl_pid },
		{ "peer port id", nd->dst_portid, s->peer.nl_pid },
		{ "peer group", nd->dst_group, __builtin_ffs(s->peer.nl_groups) },
		{ "words of groups", n, s->n_groups },
	};

	if (!nd->found) {
		if (!s->me.nl_pid && !s->n_groups)
			return 0;
		pr_err("fd %d of pid %d: netlink socket %u (port id %u, %zu group word(s)) is not "
		       "listed by netlink_diag\n", d->fd, d->pid, nd->ino, s->me.nl_pid,
		       s->n_groups);
		return -EIO;
	}
	for (size_t i = 0; i < ARRAY_SIZE(f); i++) {
		if (f[i].diag == f[i].self)
			continue;
		pr_err("fd %d of pid %d: netlink socket %u: netlink_diag says %s %u, the socket "
		       "%u\n", d->fd, d->pid, nd->ino, f[i].what, f[i].diag, f[i].self);
		return -EIO;
	}
	if (memcmp(nd->groups, s->groups, n * sizeof(uint32_t))) {
		pr_err("fd %d of pid %d: netlink socket %u: netlink_diag and the socket name other "
		       "groups\n", d->fd, d->pid, nd->ino);
		return -EIO;
	}
	return 0;
}

static int netlink_dump(struct files_dump_ctx *fc, const struct fd_desc *d, uint32_t *id)
{
	NetlinkSkEntry ne = NETLINK_SK_ENTRY__INIT;
	FownEntry fown = FOWN_ENTRY__INIT;
	FileEntry fe = FILE_ENTRY__INIT;
	struct files_sk_opts so = {};
	struct nl_self s = {};
	struct nl_diag nd = { .ino = d->st.st_ino };
	socklen_t l = sizeof(s.me), pl = sizeof(s.peer), gl;
	int sk = files_peekfd(d);
	int ret;
	char c;

	if (sk < 0)
		return sk;
	if (!files_same_netns(d->pid)) {
		pr_err("fd %d of pid %d: netlink socket in a network namespace of the tree's own: "
		       "not supported yet\n", d->fd, d->pid);
		return -EOPNOTSUPP;
	}
	gl = sizeof(s.proto);
	if (getsockopt(sk, SOL_SOCKET, SO_PROTOCOL, &s.proto, &gl) ||
	    getsockname(sk, (void *)&s.me, &l) || getpeername(sk, (void *)&s.peer, &pl)) {
		pr_perror("fd %d of pid %d: netlink socket", d->fd, d->pid);
		return -errno;
	}
	if (recv(sk, &c, 1, MSG_PEEK | MSG_DONTWAIT) >= 0) {
		pr_err("fd %d of pid %d: netlink socket (protocol %d) has messages queued: not "
		       "supported\n", d->fd, d->pid, s.proto);
		return -EOPNOTSUPP;
	}
	gl = sizeof(s.groups);
	if (getsockopt(sk, SOL_NETLINK, NETLINK_LIST_MEMBERSHIPS, s.groups, &gl)) {
		pr_perror("fd %d of pid %d: NETLINK_LIST_MEMBERSHIPS", d->fd, d->pid);
		return -errno;
	}
	if (gl > sizeof(s.groups)) {
		pr_err("fd %d of pid %d: netlink socket in more than %d groups: not supported\n",
		       d->fd, d->pid, NL_MAX_GROUP_WORDS * 32);
		return -EOPNOTSUPP;
	}
	s.n_groups = nl_group_words(s.groups, gl / sizeof(uint32_t));
	ret = nl_diag_get(fc, s.proto, &nd);
	if (!ret)
		ret = nl_cross_check(d, &nd, &s);
	if (ret)
		return ret;
	if (!nd.found) /* unbound, in no group: nothing more to know */
		nd = (struct nl_diag){ .ino = nd.ino, .protocol = s.proto };
	ret = files_sk_opts_dump(sk, NULL, &so);
	if (ret) {
		files_sk_opts_free(&so);
		return ret;
	}
	*id = files_new_id(fc);
	ne.id = *id;
	ne.ino = d->st.st_ino;
	ne.protocol = nd.protocol;
	ne.flags = d->flags;
	ne.portid = nd.portid;
	/* The bitmap's words up to the last one with a member. */
	ne.n_groups = s.n_groups;
	ne.groups = nd.groups;
	ne.dst_portid = nd.dst_portid;
	ne.dst_group = nd.dst_group;
	/* sk_state: 7 (TCP_CLOSE) if never connected, as CRIU writes it; amber writes 0. */
	ne.state = nd.state == NL_CONNECTED ? NL_CONNECTED : 0;
	ne.fown = &fown;
	ne.opts = &so.e;
	fe.type = FD_TYPES__NETLINKSK;
	fe.id = *id;
	fe.nlsk = &ne;
	pr_debug("fd %d of pid %d: netlink socket %u protocol %d port %u, %zu group word(s)\n",
		 d->fd, d->pid, ne.ino, ne.protocol, ne.portid, ne.n_groups);
	ret = files_write_entry(fc, &fe);
	files_sk_opts_free(&so);
	return ret;
}

/* ---- restore ---- */

static int netlink_check(struct files_rst_ctx *fc, const FileEntry *fe)
{
	const NetlinkSkEntry *e = fe->nlsk;
	bool state_ok = e && (e->state == 0 || e->state == NL_CONNECTED ||
			      e->state == NL_NEVER_CONNECTED);
	bool ok = state_ok && e->protocol < MAX_LINKS && e->n_groups <= NL_MAX_GROUP_WORDS &&
		  e->dst_group <= 32 && e->opts && files_sk_opts_ok(e->opts);

	(void)fc;
	return files_check_sub(fe, ok, e ? e->id : 0);
}

static int open_nlsk(struct files_rst_ctx *fc, struct rfile *rf)
{
	const NetlinkSkEntry *e = rf->fe->nlsk;
	struct sockaddr_nl a = { .nl_family = AF_NETLINK, .nl_pid = e->portid };
	int sk = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, e->protocol), ret;

	if (sk < 0) {
		pr_perror("netlink socket %u: socket(protocol %u)", e->ino, e->protocol);
		return -errno;
	}
	ret = files_sk_opts_restore(sk, e->opts,
				    files_sk_dflt(fc->st, sk, AF_NETLINK, SOCK_RAW, e->protocol),
				    "netlink socket", e->ino);
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
	return files_prepare_each(fc, FD_TYPES__NETLINKSK, open_nlsk);
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
