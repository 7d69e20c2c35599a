/* SPDX-License-Identifier: MIT */
#ifndef AMBER_TRACK_H
#define AMBER_TRACK_H

/*
 * Memory change trackers: which private pages were written since the
 * last dump of the same tree. One interface, two kernels' mechanisms:
 *
 *   soft-dirty  clear_refs "4" after each scan; bit 55 of pagemap (or
 *               PAGE_IS_SOFT_DIRTY through PAGEMAP_SCAN) says "written".
 *   uffd-wp     a userfaultfd living in the target (injected with
 *               libcompel, taken out with pidfd_getfd), WP_ASYNC +
 *               WP_UNPOPULATED, writable private VMAs registered in WP
 *               mode; PAGEMAP_SCAN with PM_SCAN_WP_MATCHING returns the
 *               written pages and write-protects them again atomically.
 *
 * Both err on the side of "written": a page in a VMA new since the last
 * scan, or in a VMA the tracker could not cover, counts as written. The
 * tree is frozen from the scan until the pages are copied.
 *
 * Lifetime of the uffd-wp tracker: its fd stays in the target between
 * dumps (close-on-exec, at a high fd number, recorded in mm-PID.img as
 * amber_track_fd), is never saved as one of the task's fds, and is closed
 * in the target by a dump that kills the tree or does not track, or by
 * `amber pre-dump --cleanup`. Left in place it is harmless: an async
 * write-protect fault is resolved by the kernel without waking anyone.
 */
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

enum track_kind {
	TRACK_NONE,
	TRACK_SOFT_DIRTY,
	TRACK_UFFD_WP,
};

struct tracker {
	enum track_kind kind;
	bool pagemap_scan; /* the kernel has PAGEMAP_SCAN */
	uint64_t zero_pfn; /* for the pagemap-read fallback */
};

/* Per-task tracker state during one dump. */
struct track_task {
	pid_t pid;
	int uffd;      /* amber's copy of the target's uffd, -1 */
	int target_fd; /* its number in the target, -1 */
	bool fresh;    /* armed just now: nothing it says is "clean" */
	bool rearmed;  /* scanned in this dump: the tracker moved on */
};

/*
 * Picks the tracker for @name ("auto", "soft-dirty", "uffd-wp"): auto
 * takes soft-dirty where a real round trip shows it works, else uffd-wp,
 * else fails naming what the kernel lacks. @why gets the reason.
 */
int track_select(struct tracker *tr, const char *name, char *why, size_t why_len);
const char *track_kind_name(enum track_kind k);

/*
 * Arms (or re-attaches to) the tracker of task @pid. @prev_fd is the
 * amber_track_fd of the parent image: -1 if it has none, TRACK_NO_PARENT
 * if there is no parent image of this task.
 */
#define TRACK_NO_PARENT (-2)
int track_task_prepare(const struct tracker *tr, struct track_task *tt, pid_t pid, int prev_fd);

/* One region of wanted pages (present or swapped, not file, not zero). */
typedef int (*track_region_fn)(void *arg, uint64_t start, uint64_t end, bool written);

/*
 * Scans [start, end) of one VMA and calls @fn for each region of wanted
 * pages, with whether the tracker saw them written. Re-arms the uffd-wp
 * tracker for the pages it reports. @writable_private: the VMA can be
 * tracked by uffd-wp.
 */
int track_scan_vma(const struct tracker *tr, struct track_task *tt, int pagemap_fd,
		   uint64_t start, uint64_t end, bool writable_private, track_region_fn fn,
		   void *arg);

/* The same for memory no tracker can follow: every present page, as written. */
int track_scan_untracked(const struct tracker *tr, int pagemap_fd, uint64_t start,
			 uint64_t end, track_region_fn fn, void *arg);

/* After every VMA of the task was scanned: soft-dirty clears its bits. */
int track_task_rearm(const struct tracker *tr, struct track_task *tt);

/* Closes amber's copy; the tracker stays in the target. */
void track_task_put(struct track_task *tt);

/*
 * True if fd @fd of @pid is an amber tracker: a userfaultfd with WP_ASYNC
 * (amber cannot dump userfaultfds at all, so nothing else is lost).
 */
bool track_is_tracker_fd(pid_t pid, int fd);

/*
 * Closes every tracker fd of frozen task @pid, of this chain or another
 * (pre-dump --cleanup, a dump that leaves the tree running untracked);
 * returns how many or -errno.
 */
int track_remove_from_target(pid_t pid);

/*
 * After a failed dump: takes the tracker this dump armed in the task
 * (fresh) out again, as if the dump had not run; one picked up from the
 * parent image stays. 0 if there was none, how many fds were closed, or
 * -errno.
 */
int track_task_undo(const struct track_task *tt);

#endif
