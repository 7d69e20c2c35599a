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
 * socket's default. Restore sets each saved option; one the kernel
 * refuses fails the restore, naming it (a device gone, a filter the
 * kernel rejects), except the buffer sizes, which fall back from the
 * FORCE variants (CAP_NET_ADMIN) to the plain ones as CRIU does.
 */
#define LOG_PREFIX "sockopts: "
#include <errno.h>
#include <linux/filter.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "base/log.h"
#include "base/util.h"
#include "files/files_internal.h"

#ifndef SO_BUF_LOCK
#define SO_BUF_LOCK 72
#endif
#define MAX_FILTER 4096 /* BPF_MAXINSNS */

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

int files_sk_opts_restore(int sk, const SkOptsEntry *o, const char *what, uint32_t id)
{
	struct timeval snd = { o->so_snd_tmo_sec, o->so_snd_tmo_usec };
	struct timeval rcv = { o->so_rcv_tmo_sec, o->so_rcv_tmo_usec };
	/* The kernel doubles what it is given; the image has the doubled value. */
	int sndbuf = o->so_sndbuf / 2, rcvbuf = o->so_rcvbuf / 2;

	if (sndbuf && setsockopt(sk, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof(sndbuf)))
		SET(SO_SNDBUF, sndbuf);
	if (rcvbuf && setsockopt(sk, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)))
		SET(SO_RCVBUF, rcvbuf);
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
		 * to set). SO_BUF_LOCK always: setting the sizes above locked
		 * them, and an unlocked buffer is autotuned again.
		 */
		if ((v == 0 && io->opt != SO_BUF_LOCK) || (io->opt == SO_RCVLOWAT && v == 1))
			continue;
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
