// SPDX-License-Identifier: MIT
/*
 * Socket options every socket family shares (SOL_SOCKET), in CRIU's
 * sk_opts_entry: buffer sizes and their lock, timeouts, SO_REUSEADDR and
 * SO_REUSEPORT, priority, mark, SO_RCVLOWAT, SO_PASSCRED, SO_PASSSEC,
 * SO_DONTROUTE, SO_NO_CHECK, SO_BROADCAST, SO_KEEPALIVE, SO_OOBINLINE,
 * SO_LINGER, SO_BINDTODEVICE and a classic BPF filter (SO_ATTACH_FILTER,
 * read back with SO_GET_FILTER, one fixed64 per instruction as CRIU).
 *
 * Dump reads what the kernel reports and keeps what differs from a new
 * socket's default. Restore sets each saved option that differs from what
 * a new socket of the same kind has (struct sk_dflt: read once per network
 * namespace, family, type and protocol from a template socket, as sysctls
 * make those defaults); one the kernel refuses fails the restore, naming it
 * (a device gone, a filter the kernel rejects), except the buffer sizes,
 * which fall back from the FORCE variants (CAP_NET_ADMIN) to the plain
 * ones as CRIU does.
 */
#define LOG_PREFIX "sockopts: "
#include <errno.h>
#include <linux/filter.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "base/log.h"
#include "base/uapi.h"
#include "base/util.h"
#include "files/files_internal.h"

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif
#define MAX_FILTER 4096 /* BPF_MAXINSNS */
/* sk_userlocks bits: setting SO_SNDBUF or SO_RCVBUF sets its own */
#define SNDBUF_LOCK 1
#define RCVBUF_LOCK 2

static bool get_int(int sk, int opt, int *v)
{
	socklen_t l = sizeof(*v);

	*v = 0;
	return !getsockopt(sk, SOL_SOCKET, opt, v, &l);
}

/* Boolean and small integer options: name, sockopt, field offsets. */
#define BOOL_OPT(o, f) { #o, o, offsetof(SkOptsEntry, has_##f), offsetof(SkOptsEntry, f), true }
#define U32_OPT(o, f)  { #o, o, offsetof(SkOptsEntry, has_##f), offsetof(SkOptsEntry, f), false }
static const struct int_opt {
	const char *name;
	int opt;
	size_t has_off, val_off;
	bool boolean;
} int_opts[] = {
	BOOL_OPT(SO_REUSEADDR, reuseaddr),   BOOL_OPT(SO_REUSEPORT, so_reuseport),
	BOOL_OPT(SO_BROADCAST, so_broadcast), BOOL_OPT(SO_KEEPALIVE, so_keepalive),
	BOOL_OPT(SO_PASSCRED, so_passcred),   BOOL_OPT(SO_PASSSEC, so_passsec),
	BOOL_OPT(SO_DONTROUTE, so_dontroute), BOOL_OPT(SO_NO_CHECK, so_no_check),
	U32_OPT(SO_PRIORITY, so_priority),    U32_OPT(SO_MARK, so_mark),
	U32_OPT(SO_RCVLOWAT, so_rcvlowat),    U32_OPT(SO_OOBINLINE, so_oobinline),
	U32_OPT(SO_BUF_LOCK, so_buf_lock),
};

/* ---- a new socket's defaults (restore) ---- */

/* Asked of a template socket besides SOL_SOCKET's: family 0, any; proto 0, any. */
static const struct dflt_opt {
	int family, proto, level, opt;
} dflt_opts[] = {
	{ AF_INET, 0, IPPROTO_IP, IP_TTL },
	{ AF_INET, 0, IPPROTO_IP, IP_TOS },
	{ AF_INET, 0, IPPROTO_IP, IP_FREEBIND },
	{ AF_INET, 0, IPPROTO_IP, IP_PKTINFO },
	{ AF_INET6, 0, IPPROTO_IPV6, IPV6_UNICAST_HOPS },
	{ AF_INET6, 0, IPPROTO_IPV6, IPV6_TCLASS },
	{ AF_INET6, 0, IPPROTO_IPV6, IPV6_FREEBIND },
	{ AF_INET6, 0, IPPROTO_IPV6, IPV6_RECVPKTINFO },
	{ AF_INET6, 0, IPPROTO_IPV6, IPV6_V6ONLY },
	{ AF_INET6, 0, IPPROTO_IP, IP_TOS }, /* for IPv4 (mapped) traffic */
	{ 0, IPPROTO_TCP, IPPROTO_TCP, TCP_NODELAY },
	{ 0, IPPROTO_TCP, IPPROTO_TCP, TCP_CORK },
	{ 0, IPPROTO_TCP, IPPROTO_TCP, TCP_KEEPCNT },
	{ 0, IPPROTO_TCP, IPPROTO_TCP, TCP_KEEPIDLE },
	{ 0, IPPROTO_TCP, IPPROTO_TCP, TCP_KEEPINTVL },
};

static bool ns_of(int sk, uint64_t *ns)
{
	socklen_t l = sizeof(*ns);

	return !getsockopt(sk, SOL_SOCKET, SO_NETNS_COOKIE, ns, &l);
}

static void dflt_read(struct sk_dflt *d, int t, int level, int opt)
{
	socklen_t l = sizeof(int);
	int v = 0;

	/* An option the template does not report stays unknown: always set. */
	if (d->nr < SK_DFLT_MAX && !getsockopt(t, level, opt, &v, &l) && l == sizeof(int))
		d->v[d->nr++] = (struct sk_dflt_val){ level, opt, v };
}

static struct sk_dflt *dflt_find(struct files_rst *fr, uint64_t ns, int family, int type,
				 int proto)
{
	for (int i = 0; i < fr->nr_sk_dflts; i++) {
		struct sk_dflt *d = &fr->sk_dflts[i];

		if (d->netns == ns && d->family == family && d->type == type && d->proto == proto)
			return d;
	}
	return NULL;
}

/* A template of that kind, read and closed at once (no fd of it reaches a task). */
static struct sk_dflt *dflt_make(struct files_rst *fr, int family, int type, int proto)
{
	struct sk_dflt d = { .family = family, .type = type, .proto = proto }, *n;
	int t = socket(family, type | SOCK_CLOEXEC, proto);

	if (t < 0)
		return NULL;
	if (!ns_of(t, &d.netns)) {
		close(t);
		return NULL;
	}
	n = dflt_find(fr, d.netns, family, type, proto);
	if (n) {
		close(t);
		return n;
	}
	dflt_read(&d, t, SOL_SOCKET, SO_SNDBUF);
	dflt_read(&d, t, SOL_SOCKET, SO_RCVBUF);
	for (size_t i = 0; i < ARRAY_SIZE(int_opts); i++)
		dflt_read(&d, t, SOL_SOCKET, int_opts[i].opt);
	for (size_t i = 0; i < ARRAY_SIZE(dflt_opts); i++)
		if ((!dflt_opts[i].family || dflt_opts[i].family == family) &&
		    (!dflt_opts[i].proto || dflt_opts[i].proto == proto))
			dflt_read(&d, t, dflt_opts[i].level, dflt_opts[i].opt);
	close(t);
	n = realloc(fr->sk_dflts, (fr->nr_sk_dflts + 1) * sizeof(*n));
	if (!n)
		return NULL;
	fr->sk_dflts = n;
	n[fr->nr_sk_dflts] = d;
	pr_debug("defaults of family %d type %d protocol %d (netns %llx): %d options\n", family,
		 type, proto, (unsigned long long)d.netns, d.nr);
	return &n[fr->nr_sk_dflts++];
}

const struct sk_dflt *files_sk_dflt(struct files_rst *fr, int sk, int family, int type,
				    int proto)
{
	const struct sk_dflt *d;
	uint64_t ns;

	/* The fresh socket's own namespace: a cached entry is of the same one. */
	if (!fr || !ns_of(sk, &ns))
		return NULL;
	d = dflt_find(fr, ns, family, type, proto);
	if (!d)
		d = dflt_make(fr, family, type, proto); /* in this thread's namespace, @sk's */
	return d && d->netns == ns ? d : NULL;
}

void files_sk_dflt_prefill(struct files_rst *fr)
{
	bool have = false;
	uint64_t ns = 0;
	int failed = 0;

	/* Before fork: each task inherits what amber read, rather than reading it again. */
	for (int i = 0; i < fr->nr_files; i++) {
		const FileEntry *fe = fr->files[i].fe;
		int family, type, proto = 0;

		if (fe->type == FD_TYPES__INETSK && fe->isk) {
			family = fe->isk->family;
			type = fe->isk->type;
			proto = fe->isk->proto;
		} else if (fe->type == FD_TYPES__UNIXSK && fe->usk) {
			family = AF_UNIX;
			type = fe->usk->type;
		} else {
			continue;
		}
		if (have && dflt_find(fr, ns, family, type, proto))
			continue;
		const struct sk_dflt *d = dflt_make(fr, family, type, proto);

		/*
		 * No socket of this kind (raw without CAP_NET_RAW), no
		 * SO_NETNS_COOKIE or no memory: each socket asks again later;
		 * the next kind may still work, but not 10,000 tries.
		 */
		if (!d) {
			if (++failed > 8)
				return;
			continue;
		}
		ns = d->netns;
		have = true;
	}
}

bool files_sk_dflt_int(const struct sk_dflt *d, int level, int opt, int *v)
{
	for (int i = 0; d && i < d->nr; i++)
		if (d->v[i].level == level && d->v[i].opt == opt) {
			*v = d->v[i].val;
			return true;
		}
	return false;
}

int files_sk_opts_dump(int sk, const struct sk_known *k, struct files_sk_opts *so)
{
	SkOptsEntry *o = &so->e;
	struct timeval tv;
	struct linger lg;
	socklen_t l;
	int v;

	*so = (struct files_sk_opts){ .e = SK_OPTS_ENTRY__INIT };
	if (k && k->has_mem) {
		o->so_sndbuf = k->sndbuf;
		o->so_rcvbuf = k->rcvbuf;
	} else {
		if (get_int(sk, SO_SNDBUF, &v))
			o->so_sndbuf = v;
		if (get_int(sk, SO_RCVBUF, &v))
			o->so_rcvbuf = v;
	}
	l = sizeof(tv);
	if (!getsockopt(sk, SOL_SOCKET, SO_SNDTIMEO, &tv, &l)) {
		o->so_snd_tmo_sec = tv.tv_sec;
		o->so_snd_tmo_usec = tv.tv_usec;
	}
	l = sizeof(tv);
	if (!getsockopt(sk, SOL_SOCKET, SO_RCVTIMEO, &tv, &l)) {
		o->so_rcv_tmo_sec = tv.tv_sec;
		o->so_rcv_tmo_usec = tv.tv_usec;
	}
	for (size_t i = 0; i < ARRAY_SIZE(int_opts); i++) {
		const struct int_opt *io = &int_opts[i];

		if (io->opt == SO_MARK && k && k->has_mark)
			v = k->mark;
		else if (!get_int(sk, io->opt, &v))
			continue;
		/* SO_RCVLOWAT's default is 1: saved as every other, restored only if not 1. */
		*(protobuf_c_boolean *)((char *)o + io->has_off) = true;
		if (io->boolean)
			*(protobuf_c_boolean *)((char *)o + io->val_off) = !!v;
		else
			*(uint32_t *)((char *)o + io->val_off) = v;
	}
	l = sizeof(lg);
	if (!getsockopt(sk, SOL_SOCKET, SO_LINGER, &lg, &l) && lg.l_onoff) {
		o->has_so_linger = true;
		o->so_linger = lg.l_linger;
	}
	l = sizeof(so->dev);
	if (!getsockopt(sk, SOL_SOCKET, SO_BINDTODEVICE, so->dev, &l) && l > 1 && so->dev[0]) {
		so->dev[sizeof(so->dev) - 1] = 0;
		o->so_bound_dev = so->dev;
	}
	/* SO_GET_FILTER: the length in instructions first, then the program. */
	l = 0;
	if (!getsockopt(sk, SOL_SOCKET, SO_GET_FILTER, NULL, &l) && l > 0) {
		if (l > MAX_FILTER)
			return -E2BIG;
		so->filter = calloc(l, sizeof(struct sock_filter));
		if (!so->filter)
			return -ENOMEM;
		if (getsockopt(sk, SOL_SOCKET, SO_GET_FILTER, so->filter, &l)) {
			pr_perror("SO_GET_FILTER");
			return -errno;
		}
		o->n_so_filter = l;
		o->so_filter = so->filter;
	}
	return 0;
}

void files_sk_opts_free(struct files_sk_opts *so)
{
	free(so->filter);
	so->filter = NULL;
}

bool files_sk_opts_ok(const SkOptsEntry *o)
{
	return o->n_so_filter <= MAX_FILTER &&
	       (!o->so_bound_dev || strlen(o->so_bound_dev) < IFNAMSIZ);
}

#define SET(opt, val)                                                              \
	do {                                                                       \
		int v_ = (val);                                                    \
		if (setsockopt(sk, SOL_SOCKET, (opt), &v_, sizeof(v_))) {          \
			pr_perror("%s %u: %s", what, id, #opt);                     \
			return -errno;                                             \
		}                                                                  \
	} while (0)

bool files_sk_dflt_differs(const struct sk_dflt *d, int level, int opt, int v)
{
	int dv;

	return files_sk_dflt_int(d, level, opt, &dv) ? v != dv : v != 0;
}

/* SO_RCVLOWAT's (1 unless known) and 0 for the rest, where unknown. */
static bool is_dflt(const struct sk_dflt *d, int opt, int v)
{
	int dv;

	if (files_sk_dflt_int(d, SOL_SOCKET, opt, &dv))
		return v == dv;
	return v == 0 || (opt == SO_RCVLOWAT && v == 1);
}

int files_sk_opts_restore(int sk, const SkOptsEntry *o, const struct sk_dflt *d,
			  const char *what, uint32_t id)
{
	struct timeval snd = { o->so_snd_tmo_sec, o->so_snd_tmo_usec };
	struct timeval rcv = { o->so_rcv_tmo_sec, o->so_rcv_tmo_usec };
	/* The kernel doubles what it is given; the image has the doubled value. */
	int sndbuf = o->so_sndbuf / 2, rcvbuf = o->so_rcvbuf / 2, locks = 0, dv;
	bool lowat_set, lowat_first;

	/*
	 * A size a new socket has needs no call, which would lock it: the
	 * saved SO_BUF_LOCK says whether it was (an image without it: set
	 * and locked, as before 5.14). locks: what the calls below locked.
	 */
	if (o->has_so_buf_lock && files_sk_dflt_int(d, SOL_SOCKET, SO_BUF_LOCK, &dv))
		locks = dv;
	if (sndbuf && (!o->has_so_buf_lock ||
		       files_sk_dflt_differs(d, SOL_SOCKET, SO_SNDBUF, (int)o->so_sndbuf))) {
		if (setsockopt(sk, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof(sndbuf)))
			SET(SO_SNDBUF, sndbuf);
		locks |= SNDBUF_LOCK;
	}
	/*
	 * TCP caps SO_RCVLOWAT at half a locked receive buffer and grows an
	 * unlocked one for it. A mark within half the saved size: the size
	 * first, locked, so that the mark grows nothing. One above it was set
	 * on a buffer unlocked or larger then: the mark first, on the new
	 * socket's unlocked buffer, then the saved size over what it grew.
	 */
	lowat_set = o->has_so_rcvlowat && !is_dflt(d, SO_RCVLOWAT, (int)o->so_rcvlowat);
	lowat_first = lowat_set && rcvbuf && o->so_rcvlowat > o->so_rcvbuf / 2;
	if (lowat_first)
		SET(SO_RCVLOWAT, (int)o->so_rcvlowat);
	if (rcvbuf && (!o->has_so_buf_lock || lowat_set ||
		       files_sk_dflt_differs(d, SOL_SOCKET, SO_RCVBUF, (int)o->so_rcvbuf))) {
		if (setsockopt(sk, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)))
			SET(SO_RCVBUF, rcvbuf);
		locks |= RCVBUF_LOCK;
	}
	if ((snd.tv_sec || snd.tv_usec) &&
	    setsockopt(sk, SOL_SOCKET, SO_SNDTIMEO, &snd, sizeof(snd))) {
		pr_perror("%s %u: SO_SNDTIMEO", what, id);
		return -errno;
	}
	if ((rcv.tv_sec || rcv.tv_usec) &&
	    setsockopt(sk, SOL_SOCKET, SO_RCVTIMEO, &rcv, sizeof(rcv))) {
		pr_perror("%s %u: SO_RCVTIMEO", what, id);
		return -errno;
	}
	for (size_t i = 0; i < ARRAY_SIZE(int_opts); i++) {
		const struct int_opt *io = &int_opts[i];
		int v;

		if (!*(const protobuf_c_boolean *)((const char *)o + io->has_off))
			continue;
		v = io->boolean ? *(const protobuf_c_boolean *)((const char *)o + io->val_off)
				: (int)*(const uint32_t *)((const char *)o + io->val_off);
		/*
		 * A new socket's defaults need no call (and some need privilege
		 * to set). SO_BUF_LOCK unless the sizes above left it as saved
		 * (an unlocked buffer is autotuned again); unknown, always.
		 */
		if (io->opt == SO_BUF_LOCK) {
			if (files_sk_dflt_int(d, SOL_SOCKET, SO_BUF_LOCK, &dv) && v == locks)
				continue;
		} else if (is_dflt(d, io->opt, v) || (io->opt == SO_RCVLOWAT && lowat_first)) {
			continue;
		}
		if (setsockopt(sk, SOL_SOCKET, io->opt, &v, sizeof(v))) {
			pr_perror("%s %u: %s %d", what, id, io->name, v);
			return -errno;
		}
	}
	if (o->has_so_linger) {
		struct linger lg = { 1, (int)o->so_linger };

		if (setsockopt(sk, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg))) {
			pr_perror("%s %u: SO_LINGER", what, id);
			return -errno;
		}
	}
	if (o->so_bound_dev && *o->so_bound_dev &&
	    setsockopt(sk, SOL_SOCKET, SO_BINDTODEVICE, o->so_bound_dev,
		       strlen(o->so_bound_dev) + 1)) {
		pr_perror("%s %u: SO_BINDTODEVICE %s", what, id, o->so_bound_dev);
		return -errno;
	}
	if (o->n_so_filter) {
		struct sock_fprog prog = { .len = o->n_so_filter,
					   .filter = (struct sock_filter *)o->so_filter };

		if (setsockopt(sk, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog))) {
			pr_perror("%s %u: SO_ATTACH_FILTER (%zu instructions)", what, id,
				  o->n_so_filter);
			return -errno;
		}
	}
	return 0;
}
