/* SPDX-License-Identifier: MIT */
#ifndef AMBER_LAZY_PROTO_H
#define AMBER_LAZY_PROTO_H

/*
 * The lazy-pages wire protocol: SOCK_SEQPACKET messages on the unix socket
 * of `amber lazy-pages` (--socket PATH). One message is one struct
 * lazy_msg, optionally followed by ranges, optionally carrying one fd
 * (SCM_RIGHTS). Fixed-size types only: the restorer blob sends LZ_TASK.
 *
 *   restore --LZ_ASK_PAGES--> keeper --LZ_PAGES+memfd..., LZ_PAGES_END--> restore
 *   restore --LZ_HELLO_RESTORE--> keeper   (after its images checked out)
 *   restorer blob --LZ_TASK+uffd--> keeper --forward--> daemon
 *   daemon --LZ_FORK+uffd, LZ_REMAP/REMOVE/UNMAP, LZ_GONE--> keeper (journal)
 *   resumed daemon <--journal replay, LZ_REPLAY_END-- keeper
 *
 * The keeper (lazy_keeper.c) owns the listening socket and a dup of every
 * uffd, so faulting threads keep waiting when the daemon dies. It records
 * everything the daemon learns that changes page state (the journal); a
 * daemon started with --resume gets the journal replayed and rebuilds the
 * same state, then asks the kernel which pages are already in (-EEXIST).
 */
#include <stdint.h>

#define LAZY_MAGIC 0x4c5a5931 /* "LZY1" */

enum lazy_msg_type {
	LZ_HELLO_RESTORE = 1, /* amber restore: uffds of its tasks follow */
	LZ_HELLO_DAEMON,      /* a daemon (first or resumed): replay me the journal */
	LZ_TASK,	      /* pid, ranges, c: its pid namespace's inode; fd: the task's uffd */
	LZ_RESTORE_DONE,      /* every task of the restore has sent its uffd */
	LZ_FORK,	      /* id: child mm, a: parent id; fd: the child's uffd */
	LZ_REMAP,	      /* id; a: from, b: to, c: len */
	LZ_REMOVE,	      /* id; [a, b) now reads as zeros */
	LZ_UNMAP,	      /* id; [a, b) is gone */
	LZ_GONE,	      /* id: every page delivered, or the mm is gone */
	LZ_REPLAY_END,	      /* keeper to daemon: the journal is replayed */
	LZ_DONE,	      /* daemon to keeper: all delivered, exit */
	LZ_ASK_PAGES,	      /* restore: which pages files do you hand over? */
	LZ_PAGES,	      /* keeper: a: pages id; fd: that pages file (a memfd) */
	LZ_PAGES_END,	      /* keeper: a: how many LZ_PAGES came before */
};

struct lazy_range {
	uint64_t start, end;
};

struct lazy_msg {
	uint32_t magic;
	uint32_t type;
	uint32_t id;  /* mm id: keeper numbers tasks, the daemon forks */
	int32_t pid;  /* LZ_TASK: the task (its images hold the pages) */
	uint64_t a, b, c;
	uint32_t nr_ranges;
	uint32_t has_fd; /* set by the receiver: an fd came with it */
	struct lazy_range ranges[];
};

/* Largest message: a task with this many lazy VMAs. */
#define LAZY_MAX_RANGES 4096
#define LAZY_MSG_MAX	(sizeof(struct lazy_msg) + LAZY_MAX_RANGES * sizeof(struct lazy_range))

/* Fork ids are the daemon's; task ids the keeper's. */
#define LAZY_FORK_ID_BASE 0x80000000u

#endif
