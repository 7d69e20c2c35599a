// SPDX-License-Identifier: MIT
/*
 * Unix sockets at load, before anything is forked: every unix_sk_entry
 * must be one unix_rst.c can rebuild (model in unix.h), and every queued
 * packet must be for a socket that can hold it, carry files that exist
 * and name a sender that is restored.
 */
#define LOG_PREFIX "unix: "
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "base/log.h"
#include "base/util.h"
#include "files/files_internal.h"
#include "files/unix.h"

int unix_check(struct files_rst_ctx *fc, const FileEntry *fe)
{
	return files_check_sub(fe, fe->usk && fe->usk->opts && files_sk_opts_ok(fe->usk->opts),
			       fe->usk ? fe->usk->id : 0);
}

static const char *bad_entry(const UnixSkEntry *u)
{
	if (u->type != SOCK_STREAM && u->type != SOCK_DGRAM && u->type != SOCK_SEQPACKET)
		return "has an unknown type";
	if (u->state != USK_TCP_ESTABLISHED && u->state != USK_TCP_CLOSE &&
	    u->state != USK_TCP_LISTEN)
		return "has an unknown state";
	if (u->name.len > (size_t)USK_NAME_MAX)
		return "has a name longer than sun_path";
	/* A path name as sock_diag gives it: the path, then its NUL. */
	if (u->name.len && u->name.data[0] &&
	    strnlen((char *)u->name.data, u->name.len) + 1 < u->name.len)
		return "has a path name with a NUL in it";
	if (u->name_dir && u->name_dir[0] != '/')
		return "has a relative name_dir";
	if (u->uflags & ~USK_EXTERN)
		return "has CRIU flags amber can't restore";
	if (u->uflags & USK_EXTERN)
		return u->type != SOCK_DGRAM || !usk_named(u) || u->peer
			? "is external but not a named dgram socket" : NULL;
	if (u->state == USK_TCP_LISTEN && (!usk_named(u) || !usk_conn_type(u) || u->peer))
		return "listens, but is unnamed, connected or not a stream";
	if (u->backlog > 1u << 20)
		return "has an absurd backlog";
	if (u->has_shutdown && (u->shutdown & ~3u))
		return "has an unknown shutdown state";
	return NULL;
}

/* Can the peer of @u be rebuilt: a twin, a listener, or a named dgram socket? */
static const char *bad_peer(struct files_rst *fr, const UnixSkEntry *u)
{
	struct rfile *prf = u->peer ? usk_by_ino(fr, u->peer) : NULL;
	const UnixSkEntry *p = prf ? prf->fe->usk : NULL;

	if (!u->peer)
		return NULL;
	if (!p)
		return "has a peer missing from files.img";
	if (p->type != u->type)
		return "has a peer of another type";
	if (p->peer == u->ino && p->ino != u->ino)
		return NULL;
	if (usk_conn_type(u))
		return p->state == USK_TCP_LISTEN && u->state == USK_TCP_ESTABLISHED ? NULL
			: "has a peer that is neither its twin nor a listener";
	return usk_named(p) ? NULL : "is connected to an unnamed socket that is not its twin";
}

static int check_usk_entry(struct files_rst_ctx *fc, const UnixSkEntry *u)
{
	struct files_rst *fr = fc->st;
	const char *why = bad_entry(u);

	if (!why && (u->uflags & USK_EXTERN) && !fc->ext_unix_sk) {
		pr_err("files.img: a socket is connected to unix socket %u outside the tree (%s%.*s): restore with --ext-unix-sk\n",
		       u->ino, u->name.data[0] ? "" : "@", (int)u->name.len - !u->name.data[0],
		       (char *)u->name.data + !u->name.data[0]);
		return -EINVAL;
	}
	if (!why)
		why = bad_peer(fr, u);
	if (why) {
		pr_err("files.img: unix socket %u %s\n", u->ino, why);
		return -EINVAL;
	}
	return 0;
}

/* Can data be queued into @u again: connected, or a named dgram socket? */
static bool can_queue(struct files_rst *fr, const UnixSkEntry *u)
{
	struct rfile *prf = u->peer ? usk_by_ino(fr, u->peer) : NULL;

	if (u->state == USK_TCP_LISTEN)
		return false;
	if (u->type == SOCK_DGRAM)
		return usk_named(u) || (prf && prf->fe->usk->peer == u->ino) ||
		       (!u->peer && u->state == USK_TCP_ESTABLISHED);
	return u->state == USK_TCP_ESTABLISHED &&
	       (!prf || prf->fe->usk->state != USK_TCP_LISTEN);
}

/* A queued message's sender (SCM_CREDENTIALS) must be a restored task. */
static int check_sender(struct files_rst *fr, const struct rdata *d)
{
	for (int i = 0; i < fr->nr_tasks; i++)
		if (fr->tasks[i].pid == (pid_t)d->ucred[0])
			return 0;
	pr_err("sk-queues.img: packet for %u was sent by pid %u, which is not restored\n", d->id,
	       d->ucred[0]);
	return -EINVAL;
}

/* Files carried by a queued packet are opened by amber, to be sent again. */
static int mark_in_flight(struct files_rst_ctx *fc, struct rdata *d)
{
	for (int i = 0; i < d->nr_rights; i++) {
		struct rfile *rf = files_rfile(fc->st, d->rights[i]);

		if (!rf) {
			pr_err("sk-queues.img: packet for %u carries file %u, which is missing from files.img\n",
			       d->id, d->rights[i]);
			return -EINVAL;
		}
		rf->in_flight = true;
	}
	return d->has_ucred ? check_sender(fc->st, d) : 0;
}

int unix_load(struct files_rst_ctx *fc)
{
	struct files_rst *fr = fc->st;
	int ret = unix_index(fr);

	if (!ret)
		ret = files_load_data(fc, IMG_SK_QUEUES, &fr->skq, &fr->nr_skq);
	if (!ret)
		ret = files_sort_data(&fr->skq, fr->nr_skq);
	for (int i = 0; !ret && i < fr->nr_files; i++) {
		FileEntry *fe = fr->files[i].fe;

		if (fe->type == FD_TYPES__UNIXSK && check_usk_entry(fc, fe->usk))
			return -EINVAL;
	}
	for (int i = 0; !ret && i < fr->nr_skq; i++) {
		struct rfile *rf = files_rfile(fr, fr->skq[i].id);

		if (rf && rf->fe->type == FD_TYPES__INETSK)
			continue; /* a UDP socket's datagram: inet.c checks it */
		if (!rf || rf->fe->type != FD_TYPES__UNIXSK || !can_queue(fr, rf->fe->usk) ||
		    fr->skq[i].addr_len) {
			pr_err("sk-queues.img: packet for %u, which is not a unix socket that can hold data\n",
			       fr->skq[i].id);
			return -EINVAL;
		}
		ret = mark_in_flight(fc, &fr->skq[i]);
	}
	return ret;
}

uint32_t unix_flags(struct files_rst *fr, const FileEntry *fe)
{
	return fe->usk->flags;
}

void unix_rst_free(struct files_rst_ctx *fc)
{
	files_free_data(fc->st->skq, fc->st->nr_skq);
	for (int i = 0; fc->st->usk_twins && i < fc->st->nr_files; i++)
		files_close_fd(&fc->st->usk_twins[i]);
	free(fc->st->usk_twins);
	idx_map_free(&fc->st->usk_index);
	free(fc->st->usk_listeners);
	fc->st->usk_listeners = NULL;
	fc->st->nr_usk_listeners = 0;
}

