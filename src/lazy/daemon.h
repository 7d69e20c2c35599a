/* SPDX-License-Identifier: MIT */
#ifndef AMBER_LAZY_DAEMON_H
#define AMBER_LAZY_DAEMON_H

/*
 * Inside the lazy-pages daemon (see lazy.h): the context its files share.
 * Each file one job, each using only those below it:
 *
 *   daemon.c      loads the images, starts the keeper, runs the main loop
 *     prefetcher.c  the second thread: copies PENDING pages in batches
 *       uffd.c      faults and events of every uffd, and the page copy
 *         mms.c     the table of mms (add, finish, fail), journaled to the keeper
 *           lock.c  d->lock, and the read/copy guard between the threads
 *     eager.c       post-copy: what the restore reads eagerly, fetched up front
 *   mm.c (lazy/mm.h)  page state of one mm; source*.c  where page bytes come from
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

/* A fault the main thread served without the lock (lazy/uffd.c). */
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
	pid_t keeper_pid; /* the keeper we forked, 0 if we took one over (--resume) */
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
	struct pm_pages_fd *pages;    /* post-copy: memfds for the restore (lazy/eager.c) */
	int nr_pages;
	/* the prefetch thread (lazy/prefetcher.c); d->lock (lazy/lock.c) covers all of the above */
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
	struct lazy_mm *backoff; /* the prefetcher backed off for this one's event */
};

/* The runs of @mm's image task (its lazy view): what it may be given. */
static inline const struct pm_chain *lazy_pages_of(const struct lazy_daemon *d,
						   const struct lazy_mm *mm)
{
	return &d->rc.tasks[mm->img].pages;
}

/*
 * lazy/lock.c: the lock over all of the above, and the guard between the
 * main thread's reads of a uffd and the prefetcher's copies into it.
 */
void lazy_lock(struct lazy_daemon *d);
void lazy_unlock(struct lazy_daemon *d);
/* The prefetcher, between batches: lets the threads waiting for the lock in first. */
void lazy_yield_to_waiters(struct lazy_daemon *d);
/* The prefetcher, backed off: lets the main thread read and apply @mm's event. */
void lazy_yield_to_reader(struct lazy_daemon *d, struct lazy_mm *mm);
/* Wakes the main thread's epoll_wait (an mm finished, the prefetcher stopped). */
void lazy_kick(struct lazy_daemon *d);
uint64_t lazy_now_ns(void);
/* The main thread's side: around reading @mm's uffd and applying what it read. */
void lazy_begin_read(struct lazy_mm *mm);
void lazy_end_read(struct lazy_mm *mm);
/* The prefetcher's UFFDIO_COPY: -1 and errno EAGAIN while @mm's uffd is being read. */
struct uffdio_copy;
int lazy_guarded_copy(struct lazy_mm *mm, struct uffdio_copy *c);

/* lazy/mms.c: the table of mms, and the keeper's journal of it. */
int lazy_add_mm(struct lazy_daemon *d, struct lazy_mm *mm, int uffd);
/*
 * Closes the mm's uffd (all delivered, or the task is gone) and tells the
 * keeper. Main thread only, under the lock: the fast fault path uses uffds
 * without it. The prefetcher kicks the main thread instead.
 */
void lazy_finish_mm(struct lazy_daemon *d, struct lazy_mm *mm);
/*
 * @mm can't be served (@err): its task is killed, unless it is gone
 * (-ESRCH) or a fork; the main thread then finishes it.
 */
void lazy_fail_mm(struct lazy_daemon *d, struct lazy_mm *mm, int err);
void lazy_journal(struct lazy_daemon *d, uint32_t type, uint32_t id, uint64_t a, uint64_t b,
		  uint64_t c, int fd);

/* lazy/uffd.c: faults and events (main thread), and the page copy. */
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
/* The run of the lazy view @pc holding image address @src, or -1. */
int lazy_find_run(const struct pm_chain *pc, uint64_t src);
/*
 * Copies @n PENDING pages at @addr (one pagemap run) into @mm; if the run
 * had to be read whole for its checksum, the rest of it too. @mode 0 or
 * UFFDIO_COPY_MODE_DONTWAKE (the caller wakes). -EAGAIN: an event must be
 * read first. -ESRCH: the mm is gone. The prefetcher's copies (with
 * d->in_prefetcher) go through lazy_guarded_copy().
 */
int lazy_copy_pages(struct lazy_daemon *d, struct lazy_mm *mm, struct lazy_area *a,
		    uint64_t addr, uint64_t n, uint64_t mode, uint64_t *copied);

/* lazy/prefetcher.c: the prefetch thread, once the restore is complete. */
int lazy_prefetcher_start(struct lazy_daemon *d);
void lazy_prefetcher_stop(struct lazy_daemon *d);
/* --no-prefetch, when idle: one page per mm, to learn which mms are gone. */
int lazy_probe(struct lazy_daemon *d);

/* lazy/eager.c: post-copy, the pages files of what a restore reads eagerly. */
int lazy_fetch_eager(struct lazy_daemon *d);

#endif
