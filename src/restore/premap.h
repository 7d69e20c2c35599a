/* SPDX-License-Identifier: MIT */
#ifndef AMBER_RESTORE_PREMAP_H
#define AMBER_RESTORE_PREMAP_H

/*
 * Private anonymous memory laid out before fork (premap.c), so that
 * children share their parent's pages as they did when dumped:
 *
 *   rst_task.premap_start/len   one area, the VMAs packed in address order
 *   rst_task.premap[i]          where mm->vmas[i] waits in it, or 0
 *
 * The restorer moves each premapped VMA to its place with mremap. The
 * area lies where none of the task's saved VMAs does, so no move lands
 * on the area, not even the VMA's own old place (mremap refuses an
 * overlapping move with EINVAL).
 */
#include <stdbool.h>

#include "mm.pb-c.h"

struct rst_ctx;
struct rst_task;

/* Whether @v is laid out before fork (else the restorer maps it, as before). */
bool rst_vma_premappable(const struct rst_ctx *rc, const VmaEntry *v);

/*
 * In the task, before it forks: its premappable VMAs moved from its
 * parent's area (if the parent had them) or made fresh, and filled. The
 * rest of the parent's area is unmapped. 0 or -errno.
 */
int rst_premap(struct rst_ctx *rc, struct rst_task *t);

#endif
