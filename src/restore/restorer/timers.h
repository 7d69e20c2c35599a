/* SPDX-License-Identifier: MIT */
#ifndef AMBER_RESTORER_TIMERS_H
#define AMBER_RESTORER_TIMERS_H

#include "restore/restorer_args.h"

/*
 * POSIX timers in the restorer. Created once every thread exists (a
 * SIGEV_THREAD_ID timer names one), with its saved id: through
 * PR_TIMER_CREATE_RESTORE_IDS where the kernel has it (new in 2025),
 * else as CRIU does, creating and deleting timers until the kernel's
 * counter reaches the id. Armed last, with every signal still blocked
 * in every thread: a timer that fires before the task's own rt_sigreturn
 * leaves its signal pending, never runs a handler in a half-restored
 * task. 0, or a negative errno and *what.
 */
long rst_create_posix_timers(struct rst_task_args *a, const char **what);
long rst_arm_posix_timers(struct rst_task_args *a, const char **what);

#endif
