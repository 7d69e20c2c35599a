/* SPDX-License-Identifier: MIT */
#ifndef AMBER_LAZY_DAEMON_H
#define AMBER_LAZY_DAEMON_H

/*
 * Inside the lazy-pages daemon (see lazy.h): the context shared by the
 * loop (lazy_daemon.c) and the uffd work (lazy_uffd.c).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "lazy/lazy.h"
#include "lazy/mm.h"
#include "lazy/source.h"
#include "restore/restore.h"

/*
 * Prefetch copies one batch per step, then lets faults in: small batches
 * while faults come in (a fault waits at most one batch), big ones
 * (256 KiB) when none came for LAZY_QUIET_NS.
 */
#define LAZY_PREFETCH_BUSY  2
#define LAZY_PREFETCH_QUIET 64
#define LAZY_QUIET_NS	    5000000ULL
#define LAZY_MAX_WAKES	    64
#define LAZY_MAX_SERVED	    256

struct lazy_stats {
	uint64_t faults, fault_ns, fault_ns_max;
	uint64_t pages_faulted, pages_prefetched, zero_pages, eexist;
	uint64_t events;
	uint64_t eager_pages; /* post-copy: fetched for the restore's eager part */
	uint64_t killed;      /* mms whose pages could not be given: task killed */
};

/* A fault the main thread served without the lock (lazy_uffd.c). */
enum { SERVED_COPY, SERVED_ZERO, SERVED_DONE };
struct lazy_served {
	struct lazy_mm *mm;
	uint64_t addr;
	int how;
	uint64_t ns;
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
	struct pm_pages_src no_pages; /* post-copy: the images have no pages files */
	struct pm_pages_fd *pages;    /* post-copy: memfds for the restore (lazy_eager.c) */
	int nr_pages;
	/* lazy_prefetcher.c: the prefetch thread; d->lock covers all of the above */
	pthread_mutex_t lock;
	pthread_cond_t work;	/* the prefetcher waits here for something to copy */
	atomic_int waiting;	/* threads wanting the lock: the prefetcher yields */
	pthread_t prefetch_thread;
	bool prefetching;	/* the thread runs */
	bool stop;
	int prefetch_err;	/* why it stopped (-ENOTCONN: source lost) */
	int wake_fd;		/* eventfd: the main thread re-checks (in its epoll) */
	/* faults served under the lock, woken after it (main thread only) */
	struct {
		int uffd;
		uint64_t addr;
	} wakes[LAZY_MAX_WAKES];
	int nr_wakes;
	struct lazy_served served[LAZY_MAX_SERVED]; /* main thread only */
	int nr_served;
	bool in_prefetcher; /* under the lock: the prefetcher is copying */
	struct lazy_mm *backoff; /* lazy_prefetch() returned 2 for this one */
};

/* The runs of @mm's image task (its lazy view): what it may be given. */
static inline const struct pm_chain *lazy_pages_of(const struct lazy_daemon *d,
						   const struct lazy_mm *mm)
{
	return &d->rc.tasks[mm->img].pages;
}

/* lazy_uffd.c */
/* Checks every pagemap entry's checksum up front (local images are cheap to read). */
int lazy_verify_all(struct lazy_daemon *d);
/* Called without the lock: faults from local images need none. */
int lazy_handle_uffd(struct lazy_daemon *d, struct lazy_mm *mm);
int lazy_retry_faults(struct lazy_daemon *d, struct lazy_mm *mm);
/* Retries every mm's queued faults; how many are still queued, or -ENOTCONN. */
int lazy_retry_all(struct lazy_daemon *d);
/* Page state for the faults served without the lock (call with it). */
void lazy_apply_served(struct lazy_daemon *d);
/* Wakes the threads whose faults were served (call without the lock). */
void lazy_flush_wakes(struct lazy_daemon *d);
/*
 * One batch of background copies: 1 done, more to do; 2 backed off for an
 * event the main thread must apply first; 0 nothing to do; -ENOTCONN.
 */
int lazy_prefetch(struct lazy_daemon *d);
/* --no-prefetch, when idle: one page per mm, to learn which mms are gone. */
int lazy_probe(struct lazy_daemon *d);

/* lazy_prefetcher.c */
int lazy_prefetcher_start(struct lazy_daemon *d);
void lazy_prefetcher_stop(struct lazy_daemon *d);
void lazy_lock(struct lazy_daemon *d);
void lazy_unlock(struct lazy_daemon *d);
/* Wakes the main thread's epoll_wait (an mm finished, the prefetcher stopped). */
void lazy_kick(struct lazy_daemon *d);
uint64_t lazy_now_ns(void);

/* lazy_eager.c: post-copy, the pages files of what a restore reads eagerly. */
int lazy_fetch_eager(struct lazy_daemon *d);

/* lazy_daemon.c */
int lazy_add_mm(struct lazy_daemon *d, struct lazy_mm *mm, int uffd);
/*
 * Closes the mm's uffd (all delivered, or the task is gone) and tells the
 * keeper. Main thread only, under the lock: the fast fault path uses uffds
 * without it. The prefetcher kicks the main thread instead.
 */
void lazy_finish_mm(struct lazy_daemon *d, struct lazy_mm *mm);
void lazy_journal(struct lazy_daemon *d, uint32_t type, uint32_t id, uint64_t a, uint64_t b,
		  uint64_t c, int fd);

#endif
