/* SPDX-License-Identifier: MIT */
#ifndef AMBER_LAZY_MM_H
#define AMBER_LAZY_MM_H

/*
 * Page state of one lazily restored address space (one uffd), kept by the
 * lazy-pages daemon (lazy.h). It knows addresses and page states only:
 * which image pages it stands for is the daemon's business (pid, img).
 *
 *   lazy_mm { id, uffd, pid and img (the task whose images hold the pages) }
 *     areas[] sorted by start, never overlapping:
 *       lazy_area { [start, end) now, src: image address of start,
 *                   st[page]: PENDING (in the image, not yet in),
 *                             ZERO (hole, or MADV_DONTNEED'ed),
 *                             DONE (delivered, or no longer ours) }
 *   A fork copies the parent's areas; mremap moves areas (src stays);
 *   munmap drops them. The mm is finished when nothing is PENDING.
 *
 *   mm = lazy_mm_new(id, pid, img, ranges, nr)     every page ZERO
 *   lazy_mm_set_pending(mm, vaddr, n)              for each run the image has
 */
#include <stdint.h>
#include <sys/types.h>

#include "restore/lazy_proto.h" /* struct lazy_range, as LZ_TASK carries it */

enum lazy_page_state { PG_PENDING = 0, PG_ZERO = 1, PG_DONE = 2 };

struct lazy_area {
	uint64_t start, end;
	uint64_t src;
	uint8_t *st;
};

struct lazy_mm {
	uint32_t id;
	int uffd; /* -1 once finished or gone */
	pid_t pid; /* the task whose images hold the pages (a fork's parent's) */
	uint64_t pid_ns; /* the inode of the pid namespace @pid is in, 0: unknown */
	int img;   /* its index among the daemon's image tasks */
	struct lazy_area *areas;
	int nr_areas;
	uint64_t nr_pending;
	/* prefetch cursor: area index and page in it */
	int cur_area;
	uint64_t cur_page;
	/* faults that got -EAGAIN (an event was pending), retried after events */
	uint64_t *retry;
	int nr_retry, max_retry;
	/*
	 * The daemon's two threads (lazy/daemon.h): no event may be read
	 * while a prefetch copy is in flight, and no copy may start between
	 * reading an event and applying it. __atomic, seq_cst.
	 */
	int reading; /* the main thread reads, or applies what it read */
	int copying; /* the prefetcher is in a UFFDIO_COPY */
};

/* A new mm from an LZ_TASK: every page of @ranges is ZERO. */
struct lazy_mm *lazy_mm_new(uint32_t id, pid_t pid, int img, const struct lazy_range *ranges,
			    uint32_t nr);
/*
 * The image holds @nr_pages pages at @vaddr: those of them in the area
 * holding @vaddr become PENDING. Runs must not overlap; one starting
 * outside every area is not ours.
 */
void lazy_mm_set_pending(struct lazy_mm *mm, uint64_t vaddr, uint64_t nr_pages);
struct lazy_mm *lazy_mm_clone(const struct lazy_mm *parent, uint32_t id);
void lazy_mm_free(struct lazy_mm *mm);
/* The area holding @addr, or NULL. */
struct lazy_area *lazy_mm_find(struct lazy_mm *mm, uint64_t addr);
int lazy_mm_remap(struct lazy_mm *mm, uint64_t from, uint64_t to, uint64_t len);
int lazy_mm_unmap(struct lazy_mm *mm, uint64_t start, uint64_t end);
void lazy_mm_remove(struct lazy_mm *mm, uint64_t start, uint64_t end);
/* Marks [addr, addr + n pages) of @a DONE, counting PENDING ones. */
void lazy_area_done(struct lazy_mm *mm, struct lazy_area *a, uint64_t addr, uint64_t n);

#endif
