/* SPDX-License-Identifier: MIT */
#ifndef AMBER_DUMP_TIMERS_H
#define AMBER_DUMP_TIMERS_H

/*
 * POSIX timers (timer_create) of a frozen task, into the leader's core
 * image as CRIU keeps them: task_core_entry.timers.posix, one
 * posix_timer_entry per timer.
 *
 *   /proc/PID/timers      id, signal/sival, notify (pid or tid), clock
 *   timer_gettime(id)     interval and remaining value  } remote syscalls
 *   timer_getoverrun(id)  overrun count                 } in the task
 */
#include "core.pb-c.h"

struct arena;
struct dump_task;

int dump_posix_timers(struct dump_task *t, struct arena *a, TaskTimersEntry *te);

#endif
