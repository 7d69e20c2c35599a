/* SPDX-License-Identifier: MIT */
#ifndef AMBER_RESTORE_TASK_STATE_H
#define AMBER_RESTORE_TASK_STATE_H

/*
 * The per-task kernel state of a core image that the restorer sets with
 * raw syscalls (POSIX timers, scheduling, the stop state, oom_score_adj):
 * checked when the images are loaded,
 * so that a bad value is refused before any task is created, and copied
 * into the restorer's arguments (restorer_args.h).
 */
struct rst_task;
struct rst_task_args;
struct rst_posix_timer;
struct rst_thread;

/* 0, or -EINVAL with the reason logged. */
int rst_check_task_state(struct rst_task *t);
/* Fills @pt (room for every timer of @t) by increasing id. */
void rst_fill_posix_timers(struct rst_task *t, struct rst_posix_timer *pt);
/* How many POSIX timers @t has. */
int rst_nr_posix_timers(struct rst_task *t);
/* Policy, priority, nice and CPU affinity of thread @i of @t. */
void rst_fill_thread_sched(struct rst_task *t, int i, struct rst_thread *th);

#endif
