/* SPDX-License-Identifier: MIT */
#ifndef AMBER_LAZY_DAEMON_H
#define AMBER_LAZY_DAEMON_H

/*
 * Inside the lazy-pages daemon (see lazy.h): the context shared by the
 * loop (lazy_daemon.c) and the uffd work (lazy_uffd.c).
 */
#include <stdbool.h>
#include <stdint.h>

#include "lazy.h"
#include "lazy_source.h"
#include "restore.h"

/*
 * Prefetch copies one batch per step, then looks for faults again: small
 * batches while faults come in (a fault waits at most one batch), big ones
 * (256 KiB) when none came for LAZY_QUIET_NS.
 */
#define LAZY_PREFETCH_BUSY  16
#define LAZY_PREFETCH_QUIET 64
#define LAZY_QUIET_NS	    5000000ULL

struct lazy_stats {
	uint64_t faults, fault_ns, fault_ns_max;
	uint64_t pages_faulted, pages_prefetched, zero_pages, eexist;
	uint64_t events;
};

struct lazy_daemon {
	const struct lazy_opts *o;
	struct restore_opts ro;
	struct rst_ctx rc;
	struct lazy_source *src;
	uint8_t **verified; /* [task index][pagemap run]: checksum checked */
	int keeper;
	int ep;
	struct lazy_mm **mms;
	int nr_mms;
	int next_prefetch;
	bool restore_done;
	bool replaying; /* applying the keeper's journal: don't send it back */
	uint32_t next_fork_id;
	uint64_t last_fault_ns;
	struct lazy_stats st;
	struct lazy_msg *buf;
};

/* lazy_uffd.c */
/* Checks every pagemap entry's checksum up front (local images are cheap to read). */
int lazy_verify_all(struct lazy_daemon *d);
int lazy_handle_uffd(struct lazy_daemon *d, struct lazy_mm *mm);
int lazy_retry_faults(struct lazy_daemon *d, struct lazy_mm *mm);
/* One batch of background copies; 1 if there is more to do. */
int lazy_prefetch(struct lazy_daemon *d);
/* --no-prefetch, when idle: one page per mm, to learn which mms are gone. */
void lazy_probe(struct lazy_daemon *d);

/* lazy_daemon.c */
int lazy_add_mm(struct lazy_daemon *d, struct lazy_mm *mm, int uffd);
/* Closes the mm's uffd (all delivered, or the task is gone) and tells the keeper. */
void lazy_finish_mm(struct lazy_daemon *d, struct lazy_mm *mm);
void lazy_journal(struct lazy_daemon *d, uint32_t type, uint32_t id, uint64_t a, uint64_t b,
		  uint64_t c, int fd);

#endif
