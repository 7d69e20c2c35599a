// SPDX-License-Identifier: MIT
/* POSIX timers of a frozen task (timers.h). */
#define LOG_PREFIX "timers: "
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>

#include "base/log.h"
#include "base/util.h"
#include "dump/dump.h"
#include "dump/timers.h"

#ifndef SIGEV_THREAD_ID
#define SIGEV_THREAD_ID 4
#endif

/* One timer as /proc/PID/timers shows it. */
struct proc_timer {
	int id, signo, clock, notify, target;
	uint64_t sival;
};

static int notify_type(const char *s)
{
	if (!strcmp(s, "signal"))
		return SIGEV_SIGNAL;
	if (!strcmp(s, "none"))
		return SIGEV_NONE;
	if (!strcmp(s, "thread"))
		return SIGEV_THREAD;
	return -1;
}

/* Reads the next timer's four lines; 1 when one was read, 0 at the end. */
static int next_proc_timer(FILE *f, struct proc_timer *pt)
{
	char type[16], who[8];
	unsigned long long sival;

	if (fscanf(f, " ID: %d", &pt->id) != 1)
		return 0;
	if (fscanf(f, " signal: %d/%llx", &pt->signo, &sival) != 2 ||
	    fscanf(f, " notify: %15[a-z]/%7[a-z].%d", type, who, &pt->target) != 3 ||
	    fscanf(f, " ClockID: %d", &pt->clock) != 1)
		return -EINVAL;
	pt->sival = sival;
	pt->notify = notify_type(type);
	if (pt->notify < 0)
		return -EINVAL;
	if (!strcmp(who, "tid"))
		pt->notify |= SIGEV_THREAD_ID;
	return 1;
}

static int timer_state(struct dump_task *t, struct arena *a, const struct proc_timer *pt,
		       PosixTimerEntry **out)
{
	struct itimerspec its;
	PosixTimerEntry *e;
	long ret, overrun;

	if (remote_syscall(&t->rem, SYS_timer_gettime, &ret, pt->id, t->rem.scratch, 0, 0, 0, 0) ||
	    ret || remote_read(&t->rem, 0, &its, sizeof(its)) ||
	    remote_syscall(&t->rem, SYS_timer_getoverrun, &overrun, pt->id, 0, 0, 0, 0, 0) ||
	    overrun < 0) {
		pr_err("can't read POSIX timer %d of %d\n", pt->id, t->pid);
		return -EIO;
	}
	e = arena_new(a, PosixTimerEntry);
	if (!e)
		return -ENOMEM;
	posix_timer_entry__init(e);
	e->it_id = pt->id;
	e->clock_id = pt->clock;
	e->si_signo = pt->signo;
	e->it_sigev_notify = pt->notify;
	e->sival_ptr = pt->sival;
	e->overrun = overrun;
	e->isec = its.it_interval.tv_sec;
	e->insec = its.it_interval.tv_nsec;
	e->vsec = its.it_value.tv_sec;
	e->vnsec = its.it_value.tv_nsec;
	if (pt->notify & SIGEV_THREAD_ID) {
		e->has_notify_thread_id = true;
		e->notify_thread_id = pt->target;
	}
	*out = e;
	return 0;
}

int dump_posix_timers(struct dump_task *t, struct arena *a, TaskTimersEntry *te)
{
	struct proc_timer pt;
	char path[64];
	FILE *f;
	int ret;

	snprintf(path, sizeof(path), "/proc/%d/timers", t->pid);
	f = fopen(path, "re");
	if (!f) {
		pr_perror("can't open %s", path);
		return -errno;
	}
	while ((ret = next_proc_timer(f, &pt)) > 0) {
		PosixTimerEntry **arr = arena_array(a, PosixTimerEntry *, te->n_posix + 1);

		if (!arr) {
			ret = -ENOMEM;
			break;
		}
		if (te->n_posix) /* posix is NULL before the first */
			memcpy(arr, te->posix, te->n_posix * sizeof(*arr));
		ret = timer_state(t, a, &pt, &arr[te->n_posix]);
		if (ret)
			break;
		te->posix = arr;
		te->n_posix++;
	}
	fclose(f);
	if (ret < 0) {
		pr_err("can't dump the POSIX timers of %d (%s)\n", t->pid, strerror(-ret));
		return ret;
	}
	if (te->n_posix)
		pr_info("%d: %zu POSIX timer(s)\n", t->pid, te->n_posix);
	return 0;
}
