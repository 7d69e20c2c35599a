/* SPDX-License-Identifier: MIT */
#ifndef AMBER_DUMP_SCHED_H
#define AMBER_DUMP_SCHED_H

/*
 * Scheduling state, read from amber (no remote syscall needed):
 *
 *   per thread  policy (with SCHED_RESET_ON_FORK), RT priority, nice:
 *               thread_core_entry sched_policy/sched_prio/sched_nice as
 *               in CRIU; CPU affinity: amber's own field
 *               thread_core_entry.amber_cpu_affinity (1000, bytes)
 *   per task    oom_score_adj: task_core_entry.oom_score_adj as in CRIU
 *
 * SCHED_DEADLINE (parameters CRIU's format cannot hold) is refused.
 */
#include <sys/types.h>

#include "core.pb-c.h"

struct arena;

int dump_thread_sched(struct arena *a, pid_t tid, ThreadCoreEntry *tc);
int dump_oom_score_adj(pid_t pid, TaskCoreEntry *tc);

#endif
