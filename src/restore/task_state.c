// SPDX-License-Identifier: MIT
/* Checking and preparing what the restorer sets per task (task_state.h). */
#define LOG_PREFIX "load: "
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/log.h"
#include "restore/restore.h"
#include "restore/restorer_args.h"
#include "restore/task_state.h"

#ifndef SIGEV_THREAD_ID
#define SIGEV_THREAD_ID 4
#endif
#define NSEC_PER_SEC 1000000000ULL
#define KERNEL_NSIG 64

int rst_nr_posix_timers(struct rst_task *t)
{
	TaskTimersEntry *te = t->cores[0]->tc->timers;

	return te ? (int)te->n_posix : 0;
}

/* The clocks timer_create() accepts; a negative id is another task's CPU clock. */
static bool timer_clock_ok(int32_t clock)
{
	switch (clock) {
	case CLOCK_REALTIME:
	case CLOCK_MONOTONIC:
	case CLOCK_PROCESS_CPUTIME_ID:
	case CLOCK_THREAD_CPUTIME_ID:
	case CLOCK_BOOTTIME:
	case CLOCK_REALTIME_ALARM:
	case CLOCK_BOOTTIME_ALARM:
	case CLOCK_TAI:
		return true;
	}
	return clock < 0 && (clock & 7) != 7; /* 7: the invalid CPU clock type */
}

static bool is_thread_of(struct rst_task *t, int32_t tid)
{
	for (int i = 0; i < t->nr_threads; i++)
		if ((int32_t)t->pe->threads[i] == tid)
			return true;
	return false;
}

static int check_posix_timer(struct rst_task *t, TaskTimersEntry *te, size_t i)
{
	PosixTimerEntry *p = te->posix[i];
	int notify = p->it_sigev_notify;

	if (p->it_id > INT32_MAX)
		return pr_err("core-%d.img: POSIX timer id %u out of range\n", t->pid, p->it_id),
		       -EINVAL;
	for (size_t j = 0; j < i; j++)
		if (te->posix[j]->it_id == p->it_id)
			return pr_err("core-%d.img: POSIX timer id %u twice\n", t->pid, p->it_id),
			       -EINVAL;
	if (!timer_clock_ok((int32_t)p->clock_id))
		return pr_err("core-%d.img: POSIX timer %u: bad clock %d\n", t->pid, p->it_id,
			      (int32_t)p->clock_id),
		       -EINVAL;
	if (notify != SIGEV_SIGNAL && notify != SIGEV_NONE && notify != SIGEV_THREAD &&
	    notify != (SIGEV_SIGNAL | SIGEV_THREAD_ID))
		return pr_err("core-%d.img: POSIX timer %u: bad sigev_notify %d\n", t->pid,
			      p->it_id, notify),
		       -EINVAL;
	if (notify != SIGEV_NONE && (p->si_signo < 1 || p->si_signo > KERNEL_NSIG))
		return pr_err("core-%d.img: POSIX timer %u: bad signal %u\n", t->pid, p->it_id,
			      p->si_signo),
		       -EINVAL;
	if ((notify & SIGEV_THREAD_ID) &&
	    (!p->has_notify_thread_id || !is_thread_of(t, p->notify_thread_id)))
		return pr_err("core-%d.img: POSIX timer %u signals %d, not a thread of the task\n",
			      t->pid, p->it_id, p->notify_thread_id),
		       -EINVAL;
	if (p->insec >= NSEC_PER_SEC || p->vnsec >= NSEC_PER_SEC || p->isec > INT64_MAX ||
	    p->vsec > INT64_MAX)
		return pr_err("core-%d.img: POSIX timer %u: bad time\n", t->pid, p->it_id),
		       -EINVAL;
	return 0;
}

#define TASK_STOPPED 3

/* A stopped task's stop signal; 0 for a running one. */
static int check_stop(struct rst_task *t)
{
	TaskCoreEntry *tc = t->cores[0]->tc;
	int sig = tc->has_stop_signo ? (int)tc->stop_signo : SIGSTOP;

	if (tc->task_state != TASK_STOPPED) {
		t->stop_sig = 0;
		return 0;
	}
	if (sig != SIGSTOP && sig != SIGTSTP && sig != SIGTTIN && sig != SIGTTOU) {
		pr_err("core-%d.img: stopped by signal %d, not a stop signal\n", t->pid, sig);
		return -EINVAL;
	}
	t->stop_sig = sig;
	return 0;
}

int rst_check_task_state(struct rst_task *t)
{
	TaskTimersEntry *te = t->cores[0]->tc->timers;

	if (check_stop(t))
		return -EINVAL;

	for (size_t i = 0; te && i < te->n_posix; i++) {
		int ret = check_posix_timer(t, te, i);

		if (ret)
			return ret;
	}
	return 0;
}

static int by_id(const void *a, const void *b)
{
	const struct rst_posix_timer *x = a, *y = b;

	return (x->id > y->id) - (x->id < y->id);
}

void rst_fill_posix_timers(struct rst_task *t, struct rst_posix_timer *pt)
{
	TaskTimersEntry *te = t->cores[0]->tc->timers;
	int n = rst_nr_posix_timers(t);

	for (int i = 0; i < n; i++) {
		PosixTimerEntry *p = te->posix[i];

		memset(&pt[i], 0, sizeof(pt[i]));
		pt[i].id = p->it_id;
		pt[i].clock_id = (int32_t)p->clock_id;
		pt[i].signo = p->si_signo;
		pt[i].notify = p->it_sigev_notify;
		pt[i].tid = p->has_notify_thread_id ? p->notify_thread_id : 0;
		pt[i].sival = p->sival_ptr;
		pt[i].interval[0] = p->isec, pt[i].interval[1] = p->insec;
		pt[i].value[0] = p->vsec, pt[i].value[1] = p->vnsec;
	}
	qsort(pt, n, sizeof(*pt), by_id);
}
