/* SPDX-License-Identifier: MIT */
#ifndef AMBER_DUMP_MEMORY_H
#define AMBER_DUMP_MEMORY_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "mm.pb-c.h"

struct dump_ctx;
struct dump_task;

/* What only the task can tell about its mm (asked while the remote is up). */
struct mm_remote_state {
	uint64_t brk;
	int dumpable;
	int thp_disabled;
};

int dump_mm_remote_state(struct dump_task *t, struct mm_remote_state *st);
/* mm-<pid>.img, pagemap-<pid>.img, pages-<id>.img and shared memory. */
int dump_task_mm(struct dump_ctx *dc, struct dump_task *t, const struct mm_remote_state *st);
/* AIO rings (aio.c): the ring VMA's path, its VmaEntry kind, mm's aios. */
bool dump_aio_is_ring(const char *path);
void dump_aio_classify(VmaEntry *v);
int dump_aio_rings(struct dump_ctx *dc, pid_t pid, MmEntry *mm);
/* The pfn of the kernel's zero page, so its mappings are not dumped. */
int dump_probe_zero_pfn(uint64_t *pfn);
/*
 * The allocated extents of shared memory open at @fd (@path names it in
 * messages) into pagemap-shmem-<shmid>.img: the offset in the object is
 * the vaddr. One pagemap open at a time: never while a task's is.
 */
int dump_shmem_fd(struct dump_ctx *dc, int fd, const char *path, uint64_t shmid);

#endif
