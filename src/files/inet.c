// SPDX-License-Identifier: MIT
/*
 * Inet sockets (AF_INET, AF_INET6): TCP listening sockets and UDP sockets,
 * bound or not, unconnected or connected, in CRIU's inet_sk_entry
 * (file_entry.isk). Dump: the socket is taken with pidfd_getfd and read
 * with getsockopt, except what its family's sock_diag snapshot tells of
 * it (a bound TCP socket's type, protocol, state, names and more: struct
 * sk_known); an unbound one also with getsockname/getpeername. Restore:
 * made before fork in amber (the
 * tree shares amber's network namespace), options set, bound, then
 * listen()ed or connect()ed.
 *
 * Established TCP sockets with --tcp-established: their stream is
 * tcp.c's (TCP_REPAIR).
 *
 * Refused, naming fd, type and pid: any other protocol (SCTP...), a TCP
 * socket in a handshake or in TIME_WAIT (the state is named), a
 * connection without --tcp-established, datagrams in flight. A
 * listener's backlog and every socket's shutdown state come from
 * sock_diag (inet_diag, matched by inode); the shutdown state is saved as
 * CRIU does (inet_sk_entry.shutdown) and shutdown() again at restore.
 */
#define LOG_PREFIX "inet: "
#include <arpa/inet.h>
#include <errno.h>
#include <linux/icmp.h>
#include <linux/icmpv6.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/log.h"
#include "base/sock_diag.h"
#include "base/util.h"
#include "files/files_internal.h"

#define INET_TCP_LISTEN 10 /* the kernel's TCP_LISTEN, as CRIU saves it */
#define INET_TCP_CLOSE	7
#ifndef IPV6_HDRINCL
#define IPV6_HDRINCL 36
#endif
#define INET_ESTABLISHED 1
#define INET_SYN_SENT	 2 /* our SYN sent, no answer yet */
#define INET_FIN_WAIT1	 4 /* we shut down writing, not acknowledged yet */
#define INET_FIN_WAIT2	 5 /* we shut down writing, the peer acknowledged */
#define INET_CLOSE_WAIT	 8 /* the peer shut down writing */
#define INET_LAST_ACK	 9 /* both did, the peer's FIN first; ours not acknowledged */
#define INET_CLOSING	 11 /* both did at once; ours not acknowledged */
#define INET_BOUND_INACTIVE 13 /* sock_diag's name for a bound socket, TCP_INFO's CLOSE */

/*
 * The connection states tcp.c saves (TCP_REPAIR): all but SYN_RECV (a
 * listener's, no fd) and TIME_WAIT (no fd either).
 */
static bool tcp_conn_state(int state)
{
	return state == INET_ESTABLISHED || state == INET_SYN_SENT || state == INET_FIN_WAIT1 ||
	       state == INET_FIN_WAIT2 || state == INET_CLOSE_WAIT || state == INET_LAST_ACK ||
	       state == INET_CLOSING;
}

static bool inet_match(const struct fd_desc *d)
{
	return S_ISSOCK(d->st.st_mode) && (d->family == AF_INET || d->family == AF_INET6);
}

static int get_int(int sk, int level, int opt)
{
	int v = 0;
	socklen_t l = sizeof(v);

	return getsockopt(sk, level, opt, &v, &l) ? 0 : v;
}

/* sockaddr -> port and 1 or 4 u32 of address in network order. */
static void addr_to_img(const struct sockaddr_storage *ss, uint32_t *addr, size_t *n,
			uint32_t *port)
{
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *a = (const void *)ss;

		memcpy(addr, &a->sin_addr, 4);
		*n = 1;
		*port = ntohs(a->sin_port);
	} else {
		const struct sockaddr_in6 *a = (const void *)ss;

		memcpy(addr, &a->sin6_addr, 16);
		*n = 4;
		*port = ntohs(a->sin6_port);
	}
}

struct sk_diag {
	bool found;
	uint32_t rqueue, wqueue;
	uint32_t src[4], dst[4]; /* addresses and ports (a SYN_SENT socket has no peer name) */
	uint16_t sport, dport;
	uint8_t shutdown; /* RCV_SHUTDOWN 1, SEND_SHUTDOWN 2: sk_shutdown enum's values */
	uint8_t state;	  /* idiag_state, the kernel's TCP_* */
	struct sk_known k; /* what else the record tells (files_internal.h) */
};

/* A socket's record in a snapshot, with the state it was in. */
struct isk_rec {
	uint32_t ino;
	uint8_t state;
	struct sk_diag d;
};

/*
 * Every socket of one family and protocol, from one sock_diag dump made
 * at the first question, once the tree is frozen: one filtered dump per
 * socket made the dump quadratic in the sockets. none: the kernel has no
 * sock_diag for this protocol (ENOENT), so no socket has a record.
 */
struct isk_snapshot {
	int family, proto;
	bool none;
	struct isk_rec *v;
	int nr, cap;
	struct idx_map by_ino; /* into v[] */
};

/* One attribute of a socket's record into @d; those asked for in isk_snapshot(). */
static void record_attr(const struct isk_snapshot *s, struct sk_diag *d, const struct rtattr *a)
{
	const void *p = RTA_DATA(a);
	size_t n = RTA_PAYLOAD(a);
	struct sk_known *k = &d->k;

	switch (a->rta_type) {
	case INET_DIAG_SHUTDOWN:
		if (n >= 1)
			d->shutdown = *(const uint8_t *)p & 3;
		break;
	case INET_DIAG_INFO: {
		struct tcp_info ti = {};

		/* UDP's record has its own info; tcpi_options and the scales are bytes 5 and 6 */
		if (s->proto != IPPROTO_TCP || n < 8)
			break;
		memcpy(&ti, p, n < sizeof(ti) ? n : sizeof(ti));
		k->has_tcp_info = true;
		k->tcpi_options = ti.tcpi_options;
		k->snd_wscale = ti.tcpi_snd_wscale;
		k->rcv_wscale = ti.tcpi_rcv_wscale;
		break;
	}
	case INET_DIAG_TOS:
	case INET_DIAG_TCLASS:
		/* fill_ip_opts() saves IP_TOS, or IPV6_TCLASS of an AF_INET6 socket */
		if (n >= 1 && (a->rta_type == INET_DIAG_TCLASS) == (s->family == AF_INET6)) {
			k->has_tos = true;
			k->tos = *(const uint8_t *)p;
		} else if (n >= 1 && a->rta_type == INET_DIAG_TOS) {
			/* and IP_TOS of an AF_INET6 one, sent for its IPv4 traffic */
			k->has_ipv4_tos = true;
			k->ipv4_tos = *(const uint8_t *)p;
		}
		break;
	case INET_DIAG_SKMEMINFO:
		if (n >= (SK_MEMINFO_SNDBUF + 1) * sizeof(uint32_t)) {
			k->has_mem = true;
			k->rcvbuf = ((const uint32_t *)p)[SK_MEMINFO_RCVBUF];
			k->sndbuf = ((const uint32_t *)p)[SK_MEMINFO_SNDBUF];
		}
		break;
	case INET_DIAG_MARK: /* sent to CAP_NET_ADMIN only */
		if (n >= sizeof(uint32_t)) {
			k->has_mark = true;
			k->mark = *(const uint32_t *)p;
		}
		break;
	case INET_DIAG_SOCKOPT: /* Linux 5.10 */
		if (n >= 1) {
			k->has_sockopt = true;
			k->freebind = ((const struct inet_diag_sockopt *)p)->freebind;
		}
		break;
	}
}

static int sk_diag_each(const struct nlmsghdr *h, void *arg)
{
	struct isk_snapshot *s = arg;
	const struct inet_diag_msg *m = NLMSG_DATA(h);
	struct isk_rec *r;
	struct rtattr *a;
	int len;

	if (!m->idiag_inode)
		return 0; /* a request or time-wait socket: no fd holds it */
	if (array_make_room(s->v, s->nr, s->cap, 64))
		return -ENOMEM;
	if (idx_map_put(&s->by_ino, m->idiag_inode, s->nr))
		return -ENOMEM;
	r = &s->v[s->nr++];
	memset(r, 0, sizeof(*r));
	r->ino = m->idiag_inode;
	r->state = m->idiag_state;
	r->d.found = true;
	r->d.rqueue = m->idiag_rqueue;
	r->d.wqueue = m->idiag_wqueue;
	memcpy(r->d.src, m->id.idiag_src, sizeof(r->d.src));
	memcpy(r->d.dst, m->id.idiag_dst, sizeof(r->d.dst));
	r->d.sport = ntohs(m->id.idiag_sport);
	r->d.dport = ntohs(m->id.idiag_dport);
	r->d.state = m->idiag_state;
	len = h->nlmsg_len - NLMSG_LENGTH(sizeof(*m));
	for (a = (void *)(m + 1); RTA_OK(a, len); a = RTA_NEXT(a, len))
		record_attr(s, &r->d, a);
	return 0;
}

static void isk_snapshots_free(struct files_dump *fd)
{
	for (int i = 0; i < fd->nr_isk_snaps; i++) {
		free(fd->isk_snaps[i].v);
		idx_map_free(&fd->isk_snaps[i].by_ino);
	}
	free(fd->isk_snaps);
	fd->isk_snaps = NULL;
	fd->nr_isk_snaps = 0;
}

/* The snapshot of @family and @proto, made now if this is the first question. */
static int isk_snapshot(struct files_dump_ctx *fc, int family, int proto,
			struct isk_snapshot **sp)
{
	struct inet_diag_req_v2 req = {
		.sdiag_family = family, .sdiag_protocol = proto, .idiag_states = ~0u,
		/* what a dump would ask getsockopt() for, socket by socket */
		.idiag_ext = 1 << (INET_DIAG_INFO - 1) | 1 << (INET_DIAG_TOS - 1) |
			     1 << (INET_DIAG_TCLASS - 1) | 1 << (INET_DIAG_SKMEMINFO - 1),
	};
	struct files_dump *fd = fc->st;
	struct isk_snapshot *s, *v;
	int ret;

	for (int i = 0; i < fd->nr_isk_snaps; i++) {
		if (fd->isk_snaps[i].family == family && fd->isk_snaps[i].proto == proto) {
			*sp = &fd->isk_snaps[i];
			return 0;
		}
	}
	v = xrealloc_array(fd->isk_snaps, fd->nr_isk_snaps + 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	fd->isk_snaps = v;
	s = &v[fd->nr_isk_snaps];
	*s = (struct isk_snapshot){ .family = family, .proto = proto };
	ret = sock_diag_request(&fc->st->diag, &req, sizeof(req), true, sk_diag_each, s);
	if (ret == -ENOENT) {
		s->none = true;
		ret = 0;
	}
	if (ret < 0) {
		pr_err("sock_diag of %s sockets (protocol %d): %s\n",
		       family == AF_INET ? "inet" : "inet6", proto, strerror(-ret));
		free(s->v);
		idx_map_free(&s->by_ino);
		return ret;
	}
	pr_debug("sock_diag: %d %s sockets of protocol %d\n", s->nr,
		 family == AF_INET ? "inet" : "inet6", proto);
	fd->nr_isk_snaps++;
	*sp = s;
	return 0;
}

/*
 * A socket's sock_diag (inet_diag) record, found by inode among those of
 * @family and @proto in @states: a listener's idiag_wqueue is its max
 * backlog, idiag_rqueue the connections waiting in its accept queue;
 * INET_DIAG_SHUTDOWN is sk_shutdown. Not found (UDP without udp_diag,
 * which the kernel answers ENOENT): d->found stays false. Any other
 * failure of sock_diag fails the dump.
 */
static int sk_diag_get(struct files_dump_ctx *fc, int family, int proto, uint32_t states,
		       uint32_t ino, struct sk_diag *d)
{
	struct isk_snapshot *s;
	int ret = isk_snapshot(fc, family, proto, &s), i;

	memset(d, 0, sizeof(*d));
	if (ret)
		return ret;
	i = idx_map_get(&s->by_ino, ino);
	if (i >= 0 && s->v[i].state < 32 && (states & (1u << s->v[i].state)))
		*d = s->v[i].d;
	return 0;
}

/* @addr:@port of a sock_diag record as the sockaddr getsockname() would give. */
static void diag_sockaddr(int family, const uint32_t *addr, uint16_t port,
			  struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		struct sockaddr_in *a = (void *)ss;

		a->sin_family = AF_INET;
		a->sin_port = htons(port);
		memcpy(&a->sin_addr, addr, 4);
	} else {
		struct sockaddr_in6 *a = (void *)ss;

		a->sin6_family = AF_INET6;
		a->sin6_port = htons(port);
		memcpy(&a->sin6_addr, addr, 16);
	}
}

/*
 * The shutdown state, from the socket's sock_diag record @rec (looked up
 * in inet_dump(); found false: unbound, not hashed, or no udp_diag).
 * Reading shut is poll()'s RDHUP, or a TCP record's RCV_SHUTDOWN. A
 * connection's writing is shut exactly when our FIN is queued, which its
 * state says. Other sockets: the record's sk_shutdown, else poll() alone:
 * HUP is both shut for UDP, but any closed TCP socket has it.
 */
static void sk_shutdown_of(int sk, int proto, int tcp_state, const struct sk_diag *rec,
			   uint32_t *shutp)
{
	struct pollfd p = { .fd = sk, .events = POLLRDHUP };
	uint32_t shut = 0;

	*shutp = 0;
	/* shutdown(SHUT_RD) turns a listener into a closed socket: none sticks. */
	if (proto == IPPROTO_TCP && tcp_state == INET_TCP_LISTEN)
		return;
	if (proto == IPPROTO_TCP && rec->found)
		p.revents = rec->shutdown & 1 ? POLLRDHUP : 0; /* tcp_poll()'s RDHUP */
	else if (poll(&p, 1, 0) != 1)
		p.revents = 0;
	if (p.revents & POLLRDHUP)
		shut = 1;
	if (proto == IPPROTO_TCP && tcp_conn_state(tcp_state)) {
		*shutp = shut | (tcp_state == INET_FIN_WAIT1 || tcp_state == INET_FIN_WAIT2 ||
				 tcp_state == INET_LAST_ACK || tcp_state == INET_CLOSING ? 2 : 0);
		return;
	}
	if (rec->found)
		shut = rec->shutdown;
	else if (proto != IPPROTO_TCP && (p.revents & POLLHUP))
		shut = 3;
	*shutp = shut;
}

/*
 * TCP_* options of any TCP socket, in tcp_opts_entry and (keepalive, for
 * CRIU 3.x readers) in sk_opts_entry; IP-level ones in ip_opts_entry.
 */
static void fill_tcp_opts(int sk, SkOptsEntry *o, TcpOptsEntry *t)
{
	t->has_nodelay = t->has_cork = true;
	t->nodelay = get_int(sk, IPPROTO_TCP, TCP_NODELAY);
	t->cork = get_int(sk, IPPROTO_TCP, TCP_CORK);
	t->has_keepcnt = t->has_keepidle = t->has_keepintvl = true;
	t->keepcnt = get_int(sk, IPPROTO_TCP, TCP_KEEPCNT);
	t->keepidle = get_int(sk, IPPROTO_TCP, TCP_KEEPIDLE);
	t->keepintvl = get_int(sk, IPPROTO_TCP, TCP_KEEPINTVL);
	o->has_tcp_keepcnt = o->has_tcp_keepidle = o->has_tcp_keepintvl = true;
	o->tcp_keepcnt = t->keepcnt;
	o->tcp_keepidle = t->keepidle;
	o->tcp_keepintvl = t->keepintvl;
}

static void fill_ip_opts(int sk, int family, int type, const struct sk_known *k,
			 IpOptsEntry *ipo)
{
	bool v6 = family == AF_INET6;
	int lvl = v6 ? IPPROTO_IPV6 : IPPROTO_IP, v;
	socklen_t l = sizeof(v);

	ipo->has_freebind = ipo->has_pktinfo = ipo->has_tos = ipo->has_ttl = true;
	ipo->freebind = k->has_sockopt ? k->freebind
				       : get_int(sk, lvl, v6 ? IPV6_FREEBIND : IP_FREEBIND);
	ipo->pktinfo = get_int(sk, lvl, v6 ? IPV6_RECVPKTINFO : IP_PKTINFO);
	ipo->tos = k->has_tos ? k->tos : get_int(sk, lvl, v6 ? IPV6_TCLASS : IP_TOS);
	ipo->ttl = get_int(sk, lvl, v6 ? IPV6_UNICAST_HOPS : IP_TTL);
	/*
	 * An AF_INET6 socket's IP_TOS marks what it sends over IPv4, apart
	 * from IPV6_TCLASS: kept where set (0 on a new socket). A raw one
	 * has none (ENOPROTOOPT).
	 */
	if (!v6 || type == SOCK_RAW)
		return;
	if (k->has_ipv4_tos)
		v = k->ipv4_tos;
	else if (getsockopt(sk, IPPROTO_IP, IP_TOS, &v, &l))
		return;
	if (v) {
		ipo->has_amber_ipv4_tos = true;
		ipo->amber_ipv4_tos = v;
	}
}

/*
 * What amber saves: TCP, and datagram sockets (UDP, UDP-Lite, ICMP
 * "ping" sockets, raw sockets of any protocol) without queued datagrams.
 */
static bool is_dgram_kind(int type, int proto)
{
	return (type == SOCK_DGRAM && (proto == IPPROTO_UDP || proto == IPPROTO_UDPLITE ||
				       proto == IPPROTO_ICMP || proto == IPPROTO_ICMPV6)) ||
	       type == SOCK_RAW;
}

/*
 * Something queued: FIONREAD, or a peek where the protocol has no
 * FIONREAD (ping sockets); a datagram of 0 bytes counts too.
 */
static bool dgram_queued(int sk)
{
	int inq = 0;
	char c;

	if (!ioctl(sk, FIONREAD, &inq) && inq > 0)
		return true;
	return recv(sk, &c, 1, MSG_PEEK | MSG_DONTWAIT | MSG_TRUNC) >= 0;
}

/* UDP and UDP-Lite: their queues are saved. */
static bool is_udp_kind(int type, int proto)
{
	return type == SOCK_DGRAM && (proto == IPPROTO_UDP || proto == IPPROTO_UDPLITE);
}

/* Raw sockets' own options: IP_HDRINCL, IP_NODEFRAG, the ICMP type filters. */
static int fill_raw_opts(int sk, int family, int proto, IpOptsRawEntry *r, uint32_t *filter)
{
	socklen_t l;

	r->has_hdrincl = r->has_nodefrag = true;
	if (family == AF_INET) {
		r->hdrincl = get_int(sk, IPPROTO_IP, IP_HDRINCL);
		r->nodefrag = get_int(sk, IPPROTO_IP, IP_NODEFRAG);
	} else {
		r->hdrincl = get_int(sk, IPPROTO_IPV6, IPV6_HDRINCL);
		r->has_nodefrag = false;
		/* An offset the kernel computes checksums at: CRIU keeps a bool only. */
		if (proto != IPPROTO_ICMPV6 && get_int(sk, IPPROTO_IPV6, IPV6_CHECKSUM) != -1)
			return -EOPNOTSUPP;
	}
	l = 8 * sizeof(uint32_t);
	if (family == AF_INET && proto == IPPROTO_ICMP)
		l = sizeof(uint32_t);
	if ((proto == IPPROTO_ICMP && family == AF_INET) ||
	    (proto == IPPROTO_ICMPV6 && family == AF_INET6)) {
		if (getsockopt(sk, family == AF_INET ? SOL_RAW : IPPROTO_ICMPV6,
			       family == AF_INET ? ICMP_FILTER : ICMPV6_FILTER, filter, &l))
			return -errno;
		r->n_icmpv_filter = l / sizeof(uint32_t);
		r->icmpv_filter = filter;
	}
	return 0;
}

static const char *refuse_why(struct files_dump_ctx *fc, int sk, int type, int proto,
			      int tcp_state, char *buf, size_t len)
{
	if (!(type == SOCK_STREAM && proto == IPPROTO_TCP) && !is_dgram_kind(type, proto))
		return "inet socket of this type/protocol";
	if (type == SOCK_STREAM && tcp_conn_state(tcp_state) && !fc->tcp_established) {
		snprintf(buf, len, "%s TCP socket (needs --tcp-established)",
			 tcp_state == INET_ESTABLISHED ? "established"
						       : files_tcp_state_name(tcp_state));
		return buf;
	}
	if (type == SOCK_STREAM && !tcp_conn_state(tcp_state) && tcp_state != INET_TCP_LISTEN &&
	    tcp_state != INET_TCP_CLOSE) {
		snprintf(buf, len, "TCP socket in state %s (saved: listening, closed, "
			 "connecting and connected)", files_tcp_state_name(tcp_state));
		return buf;
	}
	/*
	 * UDP and UDP-Lite queues are saved (inet_queue.c). A raw or ping
	 * socket's cannot be read without emptying it, nor put back without
	 * other sockets seeing copies: inet_queue.c says why.
	 */
	if (type != SOCK_STREAM && !is_udp_kind(type, proto) && dgram_queued(sk))
		return type == SOCK_RAW ? "raw socket with queued datagrams (they can be neither "
					  "read in place nor queued again alone)"
					: "ICMP ping socket with queued replies (they can be neither "
					  "read in place nor queued again alone)";
	return NULL;
}

static int inet_dump(struct files_dump_ctx *fc, const struct fd_desc *d, uint32_t *id)
{
	InetSkEntry ie = INET_SK_ENTRY__INIT;
	struct files_sk_opts so;
	TcpOptsEntry tcpo = TCP_OPTS_ENTRY__INIT;
	IpOptsEntry ipo = IP_OPTS_ENTRY__INIT;
	IpOptsRawEntry rawo = IP_OPTS_RAW_ENTRY__INIT;
	uint32_t icmp_filter[8];
	FownEntry fown = FOWN_ENTRY__INIT;
	FileEntry fe = FILE_ENTRY__INIT;
	struct sockaddr_storage src = {}, dst = {};
	socklen_t sl = sizeof(src), dl = sizeof(dst);
	uint32_t saddr[4], daddr[4];
	int sk = files_peekfd(d);
	struct sk_diag sd;
	int type, proto, tcp_state = 0, ret;
	bool peer, listening;
	const char *why;
	char why_buf[128];

	if (sk < 0)
		return sk;
	/*
	 * A bound TCP socket is in TCP's sock_diag dump, which listeners and
	 * connections need anyway: type, protocol and state from there, with
	 * what else it tells (sd.k); an unbound one, and any other, is asked.
	 */
	ret = sk_diag_get(fc, d->family, IPPROTO_TCP, ~0u, d->st.st_ino, &sd);
	if (ret)
		return ret;
	if (sd.found) {
		type = SOCK_STREAM;
		proto = IPPROTO_TCP;
		listening = sd.state == INET_TCP_LISTEN;
	} else {
		type = get_int(sk, SOL_SOCKET, SO_TYPE);
		proto = get_int(sk, SOL_SOCKET, SO_PROTOCOL);
		listening = get_int(sk, SOL_SOCKET, SO_ACCEPTCONN);
	}
	if (!sd.found && is_udp_kind(type, proto)) {
		ret = sk_diag_get(fc, d->family, proto, ~0u, d->st.st_ino, &sd);
		if (ret)
			return ret;
	}
	/* The kernel's state, not getpeername(): a connecting socket has no peer name yet. */
	if (type == SOCK_STREAM && proto == IPPROTO_TCP) {
		tcp_state = !sd.found ? files_tcp_state(sk)
			  : sd.state == INET_BOUND_INACTIVE ? INET_TCP_CLOSE : sd.state;
		if (tcp_state < 0)
			return tcp_state;
	}
	if (proto == IPPROTO_TCP && sd.found) {
		/* the record's rcv_saddr is getsockname()'s, set by connect() too */
		diag_sockaddr(d->family, sd.src, sd.sport, &src);
		peer = tcp_conn_state(tcp_state);
		if (peer)
			diag_sockaddr(d->family, sd.dst, sd.dport, &dst);
	} else {
		if (getsockname(sk, (void *)&src, &sl))
			return -errno;
		peer = !getpeername(sk, (void *)&dst, &dl);
	}
	why = refuse_why(fc, sk, type, proto, tcp_state, why_buf, sizeof(why_buf));
	if (why) {
		pr_err("fd %d of pid %d: %s (type %d, protocol %d) is not supported yet\n", d->fd,
		       d->pid, why, type, proto);
		return -ENOTSUP;
	}
	/* a record names a connecting socket's peer (above); getpeername() can't */
	if (tcp_state == INET_SYN_SENT && !peer) {
		pr_err("fd %d of pid %d: connecting TCP socket %lu: no sock_diag record of "
		       "its peer\n", d->fd, d->pid, (unsigned long)d->st.st_ino);
		return -ENOENT;
	}
	*id = files_new_id(fc);
	ie.id = *id;
	ie.ino = d->st.st_ino;
	ie.family = d->family;
	ie.type = type;
	ie.proto = proto;
	ie.state = listening ? INET_TCP_LISTEN : peer ? INET_ESTABLISHED : INET_TCP_CLOSE;
	if (tcp_conn_state(tcp_state))
		ie.state = tcp_state;
	ie.flags = d->flags;
	if (listening) {
		/* sd: its record, found in state LISTEN (listening says so) or not at all */
		uint32_t pending;

		ie.backlog = sd.found ? sd.wqueue : SOMAXCONN;
		pending = sd.found ? sd.rqueue : 0;
		/* As CRIU: connections no fd reaches would be reset when the tree dies. */
		if (pending && !fc->skip_in_flight) {
			pr_err("fd %d of pid %d: listening socket (port %u) has %u connection(s) "
			       "not accepted yet (in flight): --skip-in-flight drops them\n", d->fd,
			       d->pid, ntohs(((struct sockaddr_in *)&src)->sin_port), pending);
			return -EBUSY;
		}
		if (pending)
			pr_warn("fd %d of pid %d: %u connection(s) not accepted yet are dropped "
				"(--skip-in-flight)\n", d->fd, d->pid, pending);
	}
	addr_to_img(&src, saddr, &ie.n_src_addr, &ie.src_port);
	ie.src_addr = saddr;
	if (peer) {
		addr_to_img(&dst, daddr, &ie.n_dst_addr, &ie.dst_port);
	} else {
		/* CRIU refuses a dst_addr shorter than src_addr: the any address */
		memset(daddr, 0, sizeof(daddr));
		ie.n_dst_addr = ie.n_src_addr;
	}
	ie.dst_addr = daddr;
	if (d->family == AF_INET6) {
		ie.has_v6only = true;
		ie.v6only = get_int(sk, IPPROTO_IPV6, IPV6_V6ONLY);
	}
	fill_ip_opts(sk, d->family, type, &sd.k, &ipo);
	ie.ip_opts = &ipo;
	if (type == SOCK_RAW) {
		ret = fill_raw_opts(sk, d->family, proto, &rawo, icmp_filter);
		if (ret) {
			pr_err("fd %d of pid %d: raw socket (protocol %d): %s\n", d->fd, d->pid,
			       proto, ret == -EOPNOTSUPP ? "IPV6_CHECKSUM is set: not supported"
							: strerror(-ret));
			return ret;
		}
		ipo.raw = &rawo;
	}
	ret = files_sk_opts_dump(sk, &sd.k, &so);
	if (ret) {
		files_sk_opts_free(&so);
		return ret;
	}
	if (proto == IPPROTO_TCP) {
		fill_tcp_opts(sk, &so.e, &tcpo);
		ie.tcp_opts = &tcpo;
	}
	/* As CRIU: TCP (not raw) and UDP sockets only. */
	if ((proto == IPPROTO_TCP && type == SOCK_STREAM) ||
	    (type == SOCK_DGRAM && (proto == IPPROTO_UDP || proto == IPPROTO_UDPLITE))) {
		sk_shutdown_of(sk, proto, tcp_state, &sd, &ie.shutdown);
		ie.has_shutdown = ie.shutdown != 0;
	}
	ie.fown = &fown;
	ie.opts = &so.e;
	fe.type = FD_TYPES__INETSK;
	fe.id = *id;
	fe.isk = &ie;
	pr_debug("fd %d of pid %d: inet socket %u family %u type %u state %u port %u "
		 "shutdown %u\n", d->fd, d->pid, ie.ino, ie.family, ie.type, ie.state, ie.src_port,
		 ie.shutdown);
	if (tcp_conn_state(tcp_state))
		ret = files_tcp_dump(fc, sk, d, ie.ino, tcp_state, &tcpo, &sd.k);
	if (!ret && is_udp_kind(type, proto))
		ret = files_udp_queue_dump(fc, sk, d, *id);
	if (!ret)
		ret = files_write_entry(fc, &fe);
	files_sk_opts_free(&so);
	return ret;
}

/* ---- restore ---- */

static bool addr_ok(uint32_t family, size_t n)
{
	return n == 0 || (family == AF_INET && n == 1) || (family == AF_INET6 && n == 4);
}

static int inet_check(struct files_rst_ctx *fc, const FileEntry *fe)
{
	const InetSkEntry *e = fe->isk;
	bool ok = e && (e->family == AF_INET || e->family == AF_INET6) &&
		  ((e->type == SOCK_STREAM && e->proto == IPPROTO_TCP &&
		    (e->state == INET_TCP_LISTEN || e->state == INET_TCP_CLOSE ||
		     (tcp_conn_state(e->state) && e->n_dst_addr && e->dst_port))) ||
		   (is_dgram_kind(e->type, e->proto) &&
		    (e->state == INET_TCP_CLOSE || e->state == INET_ESTABLISHED))) &&
		  (!e->ip_opts || !e->ip_opts->raw || e->ip_opts->raw->n_icmpv_filter <= 8) &&
		  (!e->has_shutdown || !(e->shutdown & ~3u)) &&
		  addr_ok(e->family, e->n_src_addr) && addr_ok(e->family, e->n_dst_addr) &&
		  e->src_port < 65536 && e->dst_port < 65536 &&
		  /* CRIU 4.2 writes a connection's send queue length there */
		  (e->state != INET_TCP_LISTEN || e->backlog <= 65535) &&
		  e->opts && files_sk_opts_ok(e->opts);

	(void)fc;
	return files_check_sub(fe, ok, e ? e->id : 0);
}

static socklen_t img_to_addr(uint32_t family, const uint32_t *addr, size_t n, uint32_t port,
			     struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		struct sockaddr_in *a = (void *)ss;

		a->sin_family = AF_INET;
		a->sin_port = htons(port);
		if (n)
			memcpy(&a->sin_addr, addr, 4);
		return sizeof(*a);
	}
	struct sockaddr_in6 *a = (void *)ss;

	a->sin6_family = AF_INET6;
	a->sin6_port = htons(port);
	if (n)
		memcpy(&a->sin6_addr, addr, 16);
	return sizeof(*a);
}

static int set_int(int sk, int lvl, int opt, int v, const InetSkEntry *e, const char *name)
{
	if (!setsockopt(sk, lvl, opt, &v, sizeof(v)))
		return 0;
	pr_perror("inet socket %u: %s %d", e->ino, name, v);
	return -errno;
}

/* @v is not what a new socket has; unknown: not what @sk reports now. */
static bool ip_differs(int sk, const struct sk_dflt *d, int lvl, int opt, int v)
{
	int dv;

	return files_sk_dflt_int(d, lvl, opt, &dv) ? v != dv : v != get_int(sk, lvl, opt);
}

static int set_sk_opts(struct files_rst *fr, int sk, const InetSkEntry *e)
{
	const SkOptsEntry *o = e->opts;
	const IpOptsEntry *ip = e->ip_opts;
	const TcpOptsEntry *t = e->tcp_opts;
	bool v6 = e->family == AF_INET6;
	int lvl = v6 ? IPPROTO_IPV6 : IPPROTO_IP, ret;
	/* Only what differs from a new socket's, whose defaults follow sysctls. */
	const struct sk_dflt *d = files_sk_dflt(fr, sk, e->family, e->type, e->proto);

	ret = files_sk_opts_restore(sk, o, d, "inet socket", e->ino);
	if (ret)
		return ret;
	if (e->proto == IPPROTO_TCP) {
		/* tcp_opts when there (CRIU 4.x), else sk_opts' keepalive fields */
		uint32_t cnt = t && t->has_keepcnt ? t->keepcnt : o->has_tcp_keepcnt ? o->tcp_keepcnt : 0;
		uint32_t idle = t && t->has_keepidle ? t->keepidle : o->has_tcp_keepidle ? o->tcp_keepidle : 0;
		uint32_t intvl = t && t->has_keepintvl ? t->keepintvl
						       : o->has_tcp_keepintvl ? o->tcp_keepintvl : 0;

		/* Saved with or without SO_KEEPALIVE: the kernel reports them either way. */
		if ((cnt && files_sk_dflt_differs(d, IPPROTO_TCP, TCP_KEEPCNT, cnt) &&
		     (ret = set_int(sk, IPPROTO_TCP, TCP_KEEPCNT, cnt, e, "TCP_KEEPCNT"))) ||
		    (idle && files_sk_dflt_differs(d, IPPROTO_TCP, TCP_KEEPIDLE, idle) &&
		     (ret = set_int(sk, IPPROTO_TCP, TCP_KEEPIDLE, idle, e, "TCP_KEEPIDLE"))) ||
		    (intvl && files_sk_dflt_differs(d, IPPROTO_TCP, TCP_KEEPINTVL, intvl) &&
		     (ret = set_int(sk, IPPROTO_TCP, TCP_KEEPINTVL, intvl, e, "TCP_KEEPINTVL"))))
			return ret;
		if (t && t->has_nodelay &&
		    files_sk_dflt_differs(d, IPPROTO_TCP, TCP_NODELAY, t->nodelay) &&
		    (ret = set_int(sk, IPPROTO_TCP, TCP_NODELAY, t->nodelay, e, "TCP_NODELAY")))
			return ret;
		if (t && t->has_cork && files_sk_dflt_differs(d, IPPROTO_TCP, TCP_CORK, t->cork) &&
		    (ret = set_int(sk, IPPROTO_TCP, TCP_CORK, t->cork, e, "TCP_CORK")))
			return ret;
	}
	if (ip && ip->has_freebind &&
	    files_sk_dflt_differs(d, lvl, v6 ? IPV6_FREEBIND : IP_FREEBIND, ip->freebind) &&
	    (ret = set_int(sk, lvl, v6 ? IPV6_FREEBIND : IP_FREEBIND, ip->freebind, e,
			   "IP_FREEBIND")))
		return ret;
	if (ip && ip->has_pktinfo &&
	    files_sk_dflt_differs(d, lvl, v6 ? IPV6_RECVPKTINFO : IP_PKTINFO, ip->pktinfo) &&
	    (ret = set_int(sk, lvl, v6 ? IPV6_RECVPKTINFO : IP_PKTINFO, ip->pktinfo, e,
			   "IP_PKTINFO")))
		return ret;
	if (ip && ip->has_tos &&
	    files_sk_dflt_differs(d, lvl, v6 ? IPV6_TCLASS : IP_TOS, ip->tos)) {
		ret = set_int(sk, lvl, v6 ? IPV6_TCLASS : IP_TOS, ip->tos, e, "IP_TOS");
		if (ret)
			return ret;
		/* IP_TOS sets SO_PRIORITY from the TOS: the saved one back. */
		if (!v6 && o->has_so_priority &&
		    (ret = set_int(sk, SOL_SOCKET, SO_PRIORITY, o->so_priority, e, "SO_PRIORITY")))
			return ret;
	}
	/* An AF_INET6 socket's IP_TOS (its IPv4 traffic's): SO_PRIORITY alike. */
	if (v6 && ip && ip->has_amber_ipv4_tos &&
	    files_sk_dflt_differs(d, IPPROTO_IP, IP_TOS, ip->amber_ipv4_tos)) {
		ret = set_int(sk, IPPROTO_IP, IP_TOS, ip->amber_ipv4_tos, e, "IP_TOS");
		if (ret)
			return ret;
		if (o->has_so_priority &&
		    (ret = set_int(sk, SOL_SOCKET, SO_PRIORITY, o->so_priority, e, "SO_PRIORITY")))
			return ret;
	}
	if (ip && ip->has_ttl &&
	    ip_differs(sk, d, lvl, v6 ? IPV6_UNICAST_HOPS : IP_TTL, ip->ttl) &&
	    (ret = set_int(sk, lvl, v6 ? IPV6_UNICAST_HOPS : IP_TTL, ip->ttl, e, "IP_TTL")))
		return ret;
	if (ip && ip->raw && e->type == SOCK_RAW) {
		const IpOptsRawEntry *r = ip->raw;

		if (r->has_hdrincl && r->hdrincl &&
		    (ret = set_int(sk, lvl, v6 ? IPV6_HDRINCL : IP_HDRINCL, 1, e, "IP_HDRINCL")))
			return ret;
		if (!v6 && r->has_nodefrag && r->nodefrag &&
		    (ret = set_int(sk, lvl, IP_NODEFRAG, 1, e, "IP_NODEFRAG")))
			return ret;
		if (r->n_icmpv_filter &&
		    setsockopt(sk, v6 ? IPPROTO_ICMPV6 : SOL_RAW, v6 ? ICMPV6_FILTER : ICMP_FILTER,
			       r->icmpv_filter, r->n_icmpv_filter * sizeof(uint32_t))) {
			pr_perror("inet socket %u: ICMP filter", e->ino);
			return -errno;
		}
	}
	/* Only a change: a raw socket (bound to its protocol from birth) refuses any. */
	if (v6 && e->has_v6only && ip_differs(sk, d, IPPROTO_IPV6, IPV6_V6ONLY, e->v6only) &&
	    (ret = set_int(sk, IPPROTO_IPV6, IPV6_V6ONLY, e->v6only, e, "IPV6_V6ONLY")))
		return ret;
	return 0;
}

static bool is_tcp_conn(const InetSkEntry *e)
{
	return e->type == SOCK_STREAM && tcp_conn_state(e->state);
}

static int open_isk(struct files_rst_ctx *fc, struct rfile *rf)
{
	const InetSkEntry *e = rf->fe->isk;
	struct sockaddr_storage ss, ds;
	socklen_t l, dl;
	int sk = socket(e->family, e->type | SOCK_CLOEXEC, e->proto), ret;

	if (sk < 0) {
		pr_perror("inet socket %u: socket", e->ino);
		return -errno;
	}
	ret = set_sk_opts(fc->st, sk, e);
	if (ret) {
		close(sk);
		return ret;
	}
	if (is_tcp_conn(e) && !rf->tcp) /* --tcp-close: a closed socket, as CRIU's */
		return sk;
	if (is_tcp_conn(e)) {
		l = img_to_addr(e->family, e->src_addr, e->n_src_addr, e->src_port, &ss);
		dl = img_to_addr(e->family, e->dst_addr, e->n_dst_addr, e->dst_port, &ds);
		ret = files_tcp_restore(sk, e, rf->tcp, (void *)&ss, l, (void *)&ds, dl);
		if (ret) {
			close(sk);
			return ret;
		}
		return sk;
	}
		l = img_to_addr(e->family, e->src_addr, e->n_src_addr, e->src_port, &ss);
	/*
	 * The killed tree's own closed connections may hold the port in
	 * TIME_WAIT: bind as with SO_REUSEADDR, then put the saved value back.
	 */
	if (e->type == SOCK_STREAM && e->src_port)
		setsockopt(sk, SOL_SOCKET, SO_REUSEADDR, &(int){ 1 }, sizeof(int));
	if (e->src_port && bind(sk, (void *)&ss, l)) {
		pr_perror("inet socket %u: bind to port %u", e->ino, e->src_port);
		goto err;
	}
	/* Before connect(): a datagram queued from another sender is taken then. */
	if (e->type == SOCK_DGRAM) {
		ret = files_udp_queue_restore(fc->st, sk, e, rf->fe->id);
		if (ret) {
			close(sk);
			return ret;
		}
	}
	if (e->state == INET_TCP_LISTEN && listen(sk, e->backlog)) {
		pr_perror("inet socket %u: listen", e->ino);
		goto err;
	}
	if (e->type == SOCK_STREAM && e->src_port)
		setsockopt(sk, SOL_SOCKET, SO_REUSEADDR,
			   &(int){ e->opts->has_reuseaddr && e->opts->reuseaddr }, sizeof(int));
	if (e->state == INET_ESTABLISHED) {
		l = img_to_addr(e->family, e->dst_addr, e->n_dst_addr, e->dst_port, &ss);
		if (connect(sk, (void *)&ss, l)) {
			pr_perror("inet socket %u: connect to port %u", e->ino, e->dst_port);
			goto err;
		}
	}
	/* An unconnected socket keeps the flags too; the kernel says ENOTCONN. */
	if (e->has_shutdown && e->shutdown && e->state != INET_TCP_LISTEN &&
	    shutdown(sk, (int)e->shutdown - 1) && errno != ENOTCONN) {
		pr_perror("inet socket %u: shutdown(%u)", e->ino, e->shutdown);
		goto err;
	}
	return sk;
err:
	close(sk);
	return -errno;
}

/*
 * Only the sockets amber must hold are made before fork: those several
 * tasks share, an epoll's targets, those in flight in a unix queue. The
 * others are made by their task (inet_open()), at their own fd number:
 * amber holds no copy of them, so a tree of many connections needs no
 * more open files at restore than the tasks held.
 */
static bool made_by_amber(const struct rfile *rf)
{
	return rf->nr_tasks != 1 || rf->shared || rf->in_flight;
}

static int inet_prepare(struct files_rst_ctx *fc)
{
	struct files_rst *fr = fc->st;

	for (int i = 0; i < fr->nr_files; i++) {
		struct rfile *rf = &fr->files[i];
		int sk;

		if (rf->fe->type != FD_TYPES__INETSK)
			continue;
		if (!made_by_amber(rf)) {
			/* Made in repair mode by its task (open_isk()): left at finish. */
			if (rf->tcp)
				rf->tcp->repaired = true;
			continue;
		}
		sk = open_isk(fc, rf);
		if (sk < 0)
			return sk;
		rf->svc_fd = files_place(fc, rf, sk);
		if (rf->svc_fd < 0)
			return rf->svc_fd;
	}
	return 0;
}

static int inet_open(struct files_rst_ctx *fc, struct rfile *rf)
{
	return open_isk(fc, rf);
}

/*
 * At load, before anything exists: an established connection needs
 * --tcp-established (its stream image, checked now) or --tcp-close.
 */
static int inet_load(struct files_rst_ctx *fc)
{
	struct files_rst *fr = fc->st;

	/* sk-queues.img (loaded by unix.c): a datagram for a UDP(-Lite) socket, with its sender */
	for (int i = 0; i < fr->nr_skq; i++) {
		struct rfile *rf = files_rfile(fr, fr->skq[i].id);
		const InetSkEntry *e = rf && rf->fe->type == FD_TYPES__INETSK ? rf->fe->isk : NULL;

		if (e && (!is_udp_kind(e->type, e->proto) || !e->src_port ||
			  !files_udp_queue_ok(&fr->skq[i], e->family))) {
			pr_err("sk-queues.img: datagram for inet socket %u is malformed (a UDP or "
			       "UDP-Lite socket's, from an address of its family)\n", e->ino);
			return -EINVAL;
		}
	}

	for (int i = 0; i < fr->nr_files; i++) {
		struct rfile *rf = &fr->files[i];
		const InetSkEntry *e = rf->fe->isk;
		int ret;

		if (rf->fe->type != FD_TYPES__INETSK || !is_tcp_conn(e) || fc->tcp_close)
			continue;
		if (!fc->tcp_established) {
			pr_err("the images hold an established TCP connection (socket %u, port %u "
			       "to %u): restore with --tcp-established, or --tcp-close\n",
			       e->ino, e->src_port, e->dst_port);
			return -EINVAL;
		}
		ret = files_tcp_load(fc, rf);
		if (ret)
			return ret;
	}
	return 0;
}

/*
 * A socket its task made: a copy taken from the stopped task (the one
 * task holding it, at its first fd number), or -errno.
 */
static int task_copy(struct files_rst_ctx *fc, const struct rfile *rf)
{
	pid_t pid = fc->st->tasks[rf->last_task].pid;
	int pidfd, fd;

	if (fc->host_pid)
		pid = fc->host_pid(fc->host_pid_arg, pid);
	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0) {
		pr_perror("pidfd_open(%d)", pid);
		return -errno;
	}
	fd = (int)syscall(SYS_pidfd_getfd, pidfd, rf->home_fd, 0);
	if (fd < 0)
		pr_perror("TCP connection %u: pidfd_getfd(%d, fd %d)", rf->fe->isk->ino, pid,
			  rf->home_fd);
	fd = fd < 0 ? -errno : fd;
	close(pidfd);
	return fd;
}

/* Every task exists: the connections leave repair mode (tcp.c), the lock goes next. */
static int inet_finish(struct files_rst_ctx *fc)
{
	struct files_rst *fr = fc->st;
	int n = 0;

	for (int i = 0; i < fr->nr_files; i++) {
		struct rfile *rf = &fr->files[i];
		int ret, sk;

		if (rf->fe->type != FD_TYPES__INETSK || !rf->tcp || !rf->tcp->repaired)
			continue;
		sk = rf->svc_fd >= 0 ? rf->svc_fd : task_copy(fc, rf);
		if (sk < 0)
			return sk;
		ret = files_tcp_finish(sk, rf->fe->isk, rf->tcp);
		if (sk != rf->svc_fd)
			close(sk);
		if (ret)
			return ret;
		n++;
	}
	if (n)
		pr_info("%d TCP connection(s) restored\n", n);
	return 0;
}

static void inet_rst_free(struct files_rst_ctx *fc)
{
	struct files_rst *fr = fc->st;

	for (int i = 0; fr && i < fr->nr_files; i++)
		files_tcp_free(&fr->files[i]);
}

static void inet_dump_free(struct files_dump_ctx *fc)
{
	if (!fc->st)
		return;
	files_tcp_dump_free(fc->st);
	isk_snapshots_free(fc->st);
}

static uint32_t inet_flags(struct files_rst *fr, const FileEntry *fe)
{
	(void)fr;
	return fe->isk->flags;
}

const struct files_type files_inet_type = {
	.type = FD_TYPES__INETSK,
	.name = "inet socket",
	.match = inet_match,
	.dump = inet_dump,
	.dump_free = inet_dump_free,
	.check = inet_check,
	.load = inet_load,
	.prepare = inet_prepare,
	.open = inet_open,
	.finish = inet_finish,
	.rst_free = inet_rst_free,
	.flags = inet_flags,
};
