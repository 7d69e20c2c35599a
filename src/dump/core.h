/* SPDX-License-Identifier: MIT */
#ifndef AMBER_DUMP_CORE_H
#define AMBER_DUMP_CORE_H

#include "core.pb-c.h"

struct dump_ctx;
struct dump_task;

/* Writes core-<tid>.img for every thread of @t (one for a zombie). */
int dump_task_core(struct dump_ctx *dc, struct dump_task *t, TaskKobjIdsEntry *ids);

/*
 * membarrier.c: the MEMBARRIER_CMD_REGISTER_* commands @t's mm was
 * registered with, into tc (asked in the task with a remote syscall).
 */
int dump_membarrier(struct dump_task *t, TaskCoreEntry *tc);

#endif
