/* SPDX-License-Identifier: MIT */
#ifndef AMBER_RPC_H
#define AMBER_RPC_H

/*
 * CRIU's RPC (docs/rpc.md): the requests runc, crun and libcriu send to
 * `criu swrk FD`, answered through libamber's public entry points. One
 * protobuf message per SOCK_SEQPACKET packet each way.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "rpc.pb-c.h"

/*
 * The CRIU version amber answers as (RPC VERSION, `amber --version`):
 * runc, go-criu and podman compare it with the one they need (3.17:
 * Debian's CRIU).
 */
#define RPC_CRIU_MAJOR 3
#define RPC_CRIU_MINOR 17

/* The largest request amber reads; a bigger one gets an error reply. */
#define RPC_MAX_MSG (128u << 10)

struct rpc_session {
	int sk;
	pid_t caller;	/* the peer's pid (SO_PEERCRED): its fds are the request's */
	uid_t caller_uid;
	/*
	 * swrk: amber is the caller's child and its fds are the caller's to
	 * name (inherit_fd); a service's fds are its own, never handed out.
	 */
	bool swrk;
	char err[256];	/* why the current request failed, for cr_errmsg */
};

/*
 * Unpacks one request of @len bytes. 0 and *@out (free with
 * criu_req__free_unpacked(*out, NULL)), or -EBADMSG with the reason in
 * @s->err: not a criu_req, unknown fields, a type amber does not know.
 */
int rpc_parse_req(struct rpc_session *s, const uint8_t *buf, size_t len, CriuReq **out);

/*
 * The criu_opts fields @req asks for that amber cannot honour for its
 * type: 0, or -EOPNOTSUPP with the first such field named in @s->err.
 */
int rpc_check_opts(struct rpc_session *s, const CriuReq *req);

/* stats.c: CRIU's stats-dump / stats-restore in @work_dir (failures are only warned about). */
struct amber_dump_stats;
int rpc_write_dump_stats(const char *work_dir, const struct amber_dump_stats *st);
int rpc_write_restore_stats(const char *work_dir, uint32_t restore_us);

/* Serves requests on @sk until the caller closes it: 0, or -errno (@swrk: see rpc_session). */
int rpc_serve(int sk, bool swrk);

/*
 * Listens on the unix socket @address (SOCK_SEQPACKET, mode 0600) and
 * serves each caller that is root or amber's own uid in a process of its
 * own; @listening (may be NULL) is called once it listens. Returns only
 * on failure (-errno).
 */
int rpc_service(const char *address, void (*listening)(const char *address));

#endif
