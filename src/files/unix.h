/* SPDX-License-Identifier: MIT */
#ifndef AMBER_FILES_UNIX_H
#define AMBER_FILES_UNIX_H

/*
 * Unix sockets, shared by unix.c (dump, load checks) and unix_rst.c
 * (restore before fork). One unix_sk_entry per socket, keyed by inode:
 *
 *   socketpair      A.peer = B, B.peer = A, both unnamed
 *   accepted pair   A.peer = B, B.peer = A, one or both named (the
 *                   accepted end carries its listener's name)
 *   queued conn     client.peer = the listener (as CRIU writes it: the
 *                   server end of a connection not yet accepted has no
 *                   inode), client state ESTABLISHED
 *   half-closed     ESTABLISHED, peer 0: its peer was closed
 *   dgram client    A.peer = B, B named (B.peer need not be A)
 *   listener        LISTEN, named, backlog
 *   external        (--ext-unix-sk) a dgram peer outside the tree: its
 *                   name only, uflags USK_EXTERN, no fd refers to it
 *
 * A path name is saved as given to bind(); a relative one with name_dir,
 * the directory it was bound in. `deleted`: the path no longer leads to
 * the socket; the restore binds it and unlinks it again.
 */
#include <stdbool.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "files/files_internal.h"
#include "sk-unix.pb-c.h"

#define USK_TCP_ESTABLISHED 1
#define USK_TCP_CLOSE	    7
#define USK_TCP_LISTEN	    10
#define USK_EXTERN	    1 /* CRIU's uflags: a peer outside the tree, by name */
#define USK_NAME_MAX	    ((int)sizeof(((struct sockaddr_un *)0)->sun_path))

static inline bool usk_conn_type(const UnixSkEntry *u)
{
	return u->type == SOCK_STREAM || u->type == SOCK_SEQPACKET;
}

static inline bool usk_named(const UnixSkEntry *u)
{
	return u->name.len > 0;
}

/* unix_queue.c: peeks socket @sk's queue into sk-queues.img for socket @id. */
int unix_dump_queue(struct files_dump_ctx *fc, int sk, const struct fd_desc *d, uint32_t type,
		    uint32_t id);
/* unix_load.c: the files_type hooks of the load */
int unix_check(struct files_rst_ctx *fc, const FileEntry *fe);
int unix_load(struct files_rst_ctx *fc);
uint32_t unix_flags(struct files_rst *fr, const FileEntry *fe);
void unix_rst_free(struct files_rst_ctx *fc);
/* unix_rst.c: the entry of the unix socket with inode @ino, or NULL. */
struct rfile *usk_by_ino(struct files_rst *fr, uint32_t ino);
/*
 * unix_rst.c: indexes the unix sockets of files.img by inode and sorts the
 * listeners by name, for usk_by_ino() and the restore (called by
 * unix_load() first). 0, -EINVAL (an inode twice) or -ENOMEM.
 */
int unix_index(struct files_rst *fr);
/* unix_rst.c: makes every unix socket, before fork (files_type.prepare). */
int unix_prepare(struct files_rst_ctx *fc);
/* unix_rst.c: queues (with the files in flight), connects, shutdowns (.finish). */
int unix_finish(struct files_rst_ctx *fc);

#endif
