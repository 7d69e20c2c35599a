/* SPDX-License-Identifier: MIT */
#ifndef AMBER_NET_INTERNAL_H
#define AMBER_NET_INTERNAL_H

/*
 * Inside src/net: the lock's backends (one file each) and the pieces
 * lock.c assembles. A backend's lock() drops every packet of nl->conns
 * or leaves nothing behind; its unlock() removes what lock() made and
 * finds nothing to remove without an error.
 */
#include "net/netlock.h"

struct netlock_backend {
	const char *name;
	int (*lock)(const struct netlock *nl);
	int (*unlock)(const struct netlock *nl);
	/* lock, where this lock may be held already (kept, or made whole) */
	int (*lock_again)(const struct netlock *nl);
};

extern const struct netlock_backend netlock_nftables;
extern const struct netlock_backend netlock_iptables;

/* conns.c: nl->conns and nl->nr_conns of the tree's tasks @pids. */
int netlock_find_conns(struct netlock *nl, const pid_t *pids, int nr_pids);

/* record.c: IMAGES_DIR/amber.netlock, written whole (rename) or read. */
int netlock_record_write(const struct netlock *nl, int dirfd);
/* 0 and nl filled, -ENOENT if there is none, -EINVAL (named) if malformed. */
int netlock_record_read(struct netlock *nl, int dirfd);

/* An address of @c as text (IPv4 or IPv6), into @buf of INET6_ADDRSTRLEN. */
const char *netlock_addr_str(const struct netlock_conn *c, bool local, char *buf);

/* nftables: the table's name, "CRIU-<run id>" cut as CRIU 4.2 cuts it. */
void netlock_nft_table(const struct netlock *nl, char *buf, size_t len);

#endif
