/* SPDX-License-Identifier: MIT */
#ifndef AMBER_NETLOCK_H
#define AMBER_NETLOCK_H

/*
 * The network lock. From the freeze of a dump until its restore has run,
 * every packet of the tree's TCP connections is dropped (not rejected):
 * no peer sees a RST and no segment is lost; the peers retransmit until
 * the restored sockets answer. As CRIU does for a tree in the host's
 * network namespace, the lock is per connection, by its 4-tuple, in both
 * directions.
 *
 *   struct netlock
 *     method      nftables | iptables | skip (--network-lock)
 *     run_id      names the nftables table "inet CRIU-<run_id>", as CRIU's
 *                 dump_criu_run_id does (inventory.img)
 *     conns[]     struct netlock_conn: family, local and remote address
 *                 and port of one connection (v4-mapped ones as IPv4)
 *     netns, boot where the lock lives: it is removed only there
 *     tree_netns  the lock is in the tree's own network namespace (its
 *                 connections' packets cross it; amber's sees none of
 *                 them behind a veth or bridge): it dies with the tree's
 *                 namespace, and the restore takes it again inside the
 *                 new one (netlock_relock()) before any of its links is up
 *
 *   nftables: one table per dump, made in one transaction: input and
 *     output chains dropping packets whose saddr.sport.daddr.dport is in
 *     the set conns4 / conns6, which holds each connection both ways
 *     (packets marked NETLOCK_REPAIR_MARK pass). Unlock deletes the table.
 *   iptables: two rules per connection (INPUT from the peer, OUTPUT to
 *     it), inserted and deleted by one iptables-restore -w --noflush per
 *     family, with CRIU's rule text.
 *
 * The record, IMAGES_DIR/amber.netlock, says what was taken. It is
 * written before the lock, so a lock left by a killed amber can always be
 * found again: `amber net-unlock -D DIR` and the restore of DIR remove
 * it. Unlocking is idempotent: a table or rule already gone is not an
 * error; the record is removed with the lock when the directory can be
 * written (a restore may run from a read-only one). A dump into a
 * directory holding an older record removes that lock first: its images
 * are being replaced.
 *
 *   dump:     netlock_lock()    right after the freeze
 *             netlock_unlock()  when the dump fails, or with --leave-running,
 *                               once the tree runs again
 *   restore:  netlock_load()    with the other images, before anything is made
 *             netlock_unlock()  once every socket is restored, right before
 *                               TCP repair mode is switched off; and when
 *                               the restore fails
 *   net-unlock: netlock_load() + netlock_unlock()
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum netlock_method {
	NETLOCK_NONE = 0, /* nothing decided or recorded */
	NETLOCK_IPTABLES,
	NETLOCK_NFTABLES,
	NETLOCK_SKIP,
	NETLOCK_AUTO, /* dump: nftables if libnftables works here, else iptables */
};

/* inventory.img's network_lock_method (CRIU's values: 0 iptables, 1 nftables, 2 skip). */
static inline uint32_t netlock_criu_method(enum netlock_method m)
{
	return m - NETLOCK_IPTABLES;
}

/* Packets with this mark pass the lock (CRIU's SOCCR_MARK). */
#define NETLOCK_REPAIR_MARK 0xc114

#define NETLOCK_RECORD "amber.netlock"

struct netlock_conn {
	int family; /* AF_INET or AF_INET6 */
	uint16_t lport, rport;
	uint8_t laddr[16], raddr[16]; /* network order; IPv4 in the first 4 bytes */
};

struct netlock {
	enum netlock_method method;
	char run_id[40];
	struct netlock_conn *conns;
	size_t nr_conns;
	uint64_t netns;	   /* inode of the network namespace */
	char boot_id[40];  /* /proc/sys/kernel/random/boot_id */
	bool tree_netns;   /* taken in the tree's own network namespace */
	bool locked;	   /* a lock may be in place: unlock has work to do */
	bool from_record;  /* loaded from (or written to) the record */
};

const char *netlock_method_name(enum netlock_method m);
/* "nftables", "iptables" or "skip"; -EINVAL otherwise. */
int netlock_method_parse(const char *s, enum netlock_method *m);

/*
 * Dump, with the tree frozen: finds the TCP connections of tasks @pids
 * (established, connecting or closing; not listening), records them in
 * @dirfd and drops their packets with @method, in the calling thread's
 * network namespace (@tree_netns: the tree's own). No connection: no lock,
 * no record. With NETLOCK_AUTO, nftables is tried first and iptables if
 * it fails. 0 or -errno; on failure nothing stays locked.
 */
int netlock_lock(struct netlock *nl, int dirfd, enum netlock_method method, const pid_t *pids,
		 int nr_pids, bool tree_netns);

/*
 * Restore, with the calling thread in the tree's new network namespace,
 * before any of its links is up: a lock that lived in the tree's old one
 * (tree_netns) is taken again here, and netlock_unlock() then removes it
 * from here. Nothing to do otherwise. @maybe_held: the namespace is not
 * new but the caller's (external), maybe the very one the dump locked:
 * the lock is made whole there without a moment unlocked. 0 or -errno.
 */
int netlock_relock(struct netlock *nl, bool maybe_held);

/*
 * Removes the lock @nl holds or loaded (a no-op if none), then its
 * record in @dirfd (-1: leave it): 0, or -errno if the lock may still be
 * in place (the record stays, to try again). A lock taken on another
 * boot or in another network namespace is not touched: a warning says
 * where it is.
 */
int netlock_unlock(struct netlock *nl, int dirfd);

/*
 * Restore and net-unlock: reads the record of @dirfd, or, for images of
 * CRIU (no amber.sums), the method and run id of inventory.img (nftables
 * only). No lock recorded: 0 with nl->locked false. A malformed record:
 * -EINVAL, named.
 */
int netlock_load(struct netlock *nl, int dirfd);

void netlock_free(struct netlock *nl);

/* `amber net-unlock -D DIR`: remove the lock the images of @dir recorded. */
int netlock_unlock_dir(const char *dir);

#endif
