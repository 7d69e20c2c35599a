/* SPDX-License-Identifier: MIT */
#ifndef AMBER_DUMP_MEMORY_H
#define AMBER_DUMP_MEMORY_H

#include <stdint.h>

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
/* The pfn of the kernel's zero page, so its mappings are not dumped. */
int dump_probe_zero_pfn(uint64_t *pfn);

#endif
