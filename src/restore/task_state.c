// SPDX-License-Identifier: MIT
/* Checking and preparing what the restorer sets per task (task_state.h). */
#define LOG_PREFIX "load: "
#include <errno.h>
#include <sched.h>
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

#ifndef SCHED_RESET_ON_FORK
#define SCHED_RESET_ON_FORK 0x40000000
#endif

static int check_sched(struct rst_task *t, int i)
{
	ThreadCoreEntry *tc = t->cores[i]->thread_core;
	uint32_t policy = tc->sched_policy & ~SCHED_RESET_ON_FORK;
	bool rt = policy == SCHED_FIFO || policy == SCHED_RR;
	pid_t tid = t->pe->threads[i];

	if (tc->has_sched_policy && policy != SCHED_OTHER && policy != SCHED_BATCH &&
	    policy != SCHED_IDLE && !rt)
		return pr_err("core-%d.img: bad scheduling policy %#x\n", tid, tc->sched_policy),
		       -EINVAL;
	if (tc->has_sched_prio && (rt ? tc->sched_prio < 1 || tc->sched_prio > 99 : tc->sched_prio))
		return pr_err("core-%d.img: bad RT priority %u for policy %u\n", tid, tc->sched_prio,
			      policy),
		       -EINVAL;
	if (tc->has_sched_nice && (tc->sched_nice < -20 || tc->sched_nice > 19))
		return pr_err("core-%d.img: bad nice %d\n", tid, tc->sched_nice), -EINVAL;
	if (!tc->has_amber_cpu_affinity)
		return 0;
	if (tc->amber_cpu_affinity.len > RST_AFFINITY_WORDS * 8 || tc->amber_cpu_affinity.len % 8)
		return pr_err("core-%d.img: CPU affinity of %zu bytes, not 8..%d by 8\n", tid,
			      tc->amber_cpu_affinity.len, RST_AFFINITY_WORDS * 8),
		       -EINVAL;
	for (size_t b = 0; b < tc->amber_cpu_affinity.len; b++)
		if (tc->amber_cpu_affinity.data[b])
			return 0;
	return pr_err("core-%d.img: empty CPU affinity\n", tid), -EINVAL;
}

void rst_fill_thread_sched(struct rst_task *t, int i, struct rst_thread *th)
{
	ThreadCoreEntry *tc = t->cores[i]->thread_core;

	th->has_sched = tc->has_sched_policy;
	th->sched_policy = tc->sched_policy;
	th->sched_prio = tc->has_sched_prio ? tc->sched_prio : 0;
	th->sched_nice = tc->has_sched_nice ? tc->sched_nice : 0;
	th->affinity_len = tc->has_amber_cpu_affinity ? tc->amber_cpu_affinity.len : 0;
	if (th->affinity_len)
		memcpy(th->affinity, tc->amber_cpu_affinity.data, th->affinity_len);
}

int rst_check_task_state(struct rst_task *t)
{
	TaskTimersEntry *te = t->cores[0]->tc->timers;
	TaskCoreEntry *tc = t->cores[0]->tc;

	if (check_stop(t))
		return -EINVAL;
	if (tc->has_oom_score_adj && (tc->oom_score_adj < -1000 || tc->oom_score_adj > 1000)) {
		pr_err("core-%d.img: bad oom_score_adj %d\n", t->pid, tc->oom_score_adj);
		return -EINVAL;
	}
	for (int i = 0; i < t->nr_threads; i++)
		if (check_sched(t, i))
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
