/* SPDX-License-Identifier: MIT */
#ifndef AMBER_MEM_INC_H
#define AMBER_MEM_INC_H

/*
 * Incremental memory: which private pages of a task go into this image
 * (PE_PRESENT, with data) and which stay in the parent (PE_PARENT).
 *
 * A page is PE_PARENT only if all of these hold: the tracker says it was
 * not written since the parent image, its VMA is the same (start, end,
 * prot, sharing, offset) as in the parent's mm image, and the parent's
 * pagemap lists it. Anything else is PE_PRESENT: the plan errs towards
 * saving a page again, never towards losing one.
 */
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "mm.pb-c.h"
#include "mem/pagemap_chain.h"
#include "mem/track.h"

struct inc_run {
	uint64_t vaddr;
	uint32_t nr_pages;
	uint32_t flags; /* PE_PRESENT or PE_PARENT */
};

struct inc_plan {
	pid_t pid;
	struct inc_run *runs;
	int nr, cap;
	uint64_t nr_present, nr_parent;
	uint64_t vma_start; /* of the VMA being scanned */
	uint8_t *data; /* PE_PRESENT pages copied by inc_plan_copy(), in run order */
	/*
	 * Written from the running task (a pre-dump's read mode): a run it
	 * has unmapped since the scan is written as zeros, counted here. Only
	 * pages unwritten since the scan are ever used from this image, and
	 * such a run is not one of those (see predump.c).
	 */
	bool live;
	uint64_t nr_unreadable;
};

/* What the parent image knows about one task. */
struct inc_parent {
	bool have;	   /* the parent image has this task */
	MmEntry *mm;	   /* its VMAs and tracker fd */
	struct pm_layer cover; /* its pagemap: PE_PRESENT and PE_PARENT */
};

/*
 * A tracked dump or pre-dump that fails after its scan has re-armed the
 * tracker (soft-dirty cleared, uffd-wp re-protected) without leaving an
 * image: "not written since" would now be relative to nothing saved. It
 * marks every image down the chain from @parent_dirfd with INC_RESET_MARK,
 * and a marked image is never trusted as a parent again: the next dump
 * saves every page (a new chain).
 */
#define INC_RESET_MARK "amber.track-reset"
void inc_mark_chain_reset(int parent_dirfd);

/* @parent_dirfd < 0: no parent. A task missing there is not an error. */
int inc_parent_load(int parent_dirfd, pid_t pid, struct inc_parent *p);
void inc_parent_free(struct inc_parent *p);
/* amber_track_fd of the parent's mm image, -1, or TRACK_NO_PARENT. */
int inc_parent_track_fd(const struct inc_parent *p);

/*
 * Whether the pages can go where @parent says they may stay: a page
 * server must keep the parent image (-ENOENT, with the reason, if not).
 * Before inc_plan_build(), which moves the tracker on.
 */
struct xfer_target;
int inc_parent_check_target(const struct inc_parent *parent, pid_t pid, struct xfer_target *xt);
/* Scans the task's private VMAs (frozen) with the tracker into @plan. */
int inc_plan_build(struct inc_plan *plan, const struct tracker *tr, struct track_task *tt,
		   const struct inc_parent *parent, VmaEntry **vmas, size_t n_vmas,
		   int pagemap_fd);
/* Copies the PE_PRESENT pages out of the (frozen) task into plan->data. */
int inc_plan_copy(struct inc_plan *plan);
/*
 * Sends the plan through @xt (xfer.h: the image directory or a page
 * server): PE_PRESENT runs from plan->data if it was copied, else
 * straight from the (still frozen) task; PE_PARENT runs as holes. The
 * pagemap is named by @img_pid, the task's pid in its own pid namespace.
 */
int inc_plan_write(struct inc_plan *plan, struct xfer_target *xt, pid_t img_pid);
void inc_plan_free(struct inc_plan *plan);

#endif
