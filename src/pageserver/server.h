/* SPDX-License-Identifier: MIT */
#ifndef AMBER_PS_SERVER_H
#define AMBER_PS_SERVER_H

/*
 * The page server: `amber page-server`.
 *
 *   listen(address:port)
 *     accept a client -> secure it (pageserver/conn.h: none, token or TLS)
 *       receive mode (default): the client dumps; OPEN2/ADD_F/HOLE go
 *         through the local page-transfer backend into DIR, so DIR ends up
 *         with pagemap-<pid>.img and pages-<n>.img (n from 0x10001 on, as
 *         CRIU's page server numbers them) exactly as a local dump writes.
 *         If DIR/parent exists (--prev-images-dir makes it), OPEN2 tells
 *         the client which pagemaps it has there, and an incremental dump
 *         sends PE_PARENT runs for those; otherwise they are refused.
 *         CLOSE is acknowledged once everything is on disk; then it exits.
 *       lazy mode (--lazy-pages): serves the dump in DIR; each GET is
 *         answered from the images, with each entry's checksum verified
 *         before its first page leaves (server_lazy.c). A session ends at
 *         CLOSE (then the server exits) or at EOF (it keeps listening, so a
 *         restarted lazy-pages daemon can reconnect).
 *     a client that fails authentication, sends a malformed or out-of-range
 *     request, or stalls is answered PS_IOV_ERR where the protocol allows,
 *     logged, and dropped; the server goes on listening.
 *
 * One client at a time: a page server feeds one dump or one restore. The
 * others wait, at most max_connections open in all (pageserver/gate.h);
 * past that a new connection is reset at once.
 */
#include <stdbool.h>

#include "pageserver/conn.h"

/*
 * dump --lazy-pages: the PE_LAZY entries of a task's pagemap are read from
 * the frozen task itself, image pid vpids[i] being pids[i] here.
 */
struct ps_live_tree {
	const pid_t *vpids, *pids;
	int nr;
};

struct ps_server_opts {
	const char *address; /* NULL: every address */
	int port;	     /* 0: an ephemeral port, told to listening() */
	const char *dir;
	const char *prev_dir; /* receive: DIR/parent -> this (incremental dumps) */
	bool lazy;
	const struct ps_live_tree *live; /* lazy: the frozen tree, or NULL */
	int timeout; /* seconds a connected client may stay silent; 0: default */
	int max_connections; /* open at once, the served one included; 0: default */
	struct ps_sec sec;
	/* Called once listening, with the port (the CLI prints it). */
	void (*listening)(void *arg, const char *address, int port);
	void *listening_arg;
};

/* Runs until one session completes: 0, or -errno if it can't listen. */
int ps_server_run(const struct ps_server_opts *o);

/*
 * One receive session on @c (secured already) into @dirfd, its pages files
 * numbered from *@pages_id on: 0 once the client closed the transfer with
 * everything on disk, -errno otherwise. ps_server_run() calls it per
 * client; the fuzzing harness (test/fuzz) feeds it a byte stream.
 */
int ps_recv_serve(struct ps_conn *c, int dirfd, uint32_t *pages_id);

/* server_lazy.c: the dump in @dirfd, served to GET requests. */
struct ps_lazy_images;
struct ps_lazy_images *ps_lazy_open(int dirfd);
/* PE_LAZY entries are served from @live (kept, not copied); else refused. */
void ps_lazy_set_live(struct ps_lazy_images *li, const struct ps_live_tree *live);
void ps_lazy_close(struct ps_lazy_images *li);
/*
 * Answers one GET on @c: ADD_F + data, a hole (nr_pages 0), or PS_IOV_ERR.
 * Returns 0 when answered (even with an error reply), -errno when the
 * connection itself failed. (ps_lazy_serve's step; the unit tests call it.)
 */
int ps_lazy_serve_get(struct ps_lazy_images *li, struct ps_conn *c, const struct ps_iov *pi);
/*
 * One lazy session on @c: GETs answered until CLOSE. 0: served up to
 * CLOSE; 1: the client left, keep serving; <0: the session failed.
 */
int ps_lazy_serve(struct ps_lazy_images *li, struct ps_conn *c);

#endif
