// SPDX-License-Identifier: GPL-2.0
/*
 * POSIX timers (timer_create): the same ids (with a hole), clocks, signals,
 * sigev values and targets (/proc/self/timers unchanged, a SIGEV_THREAD_ID
 * timer still signals its thread), intervals; periodic timers keep firing,
 * a long one only counts down, a disarmed one stays disarmed.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "zdtm.h"

/*
 * Both signals stay blocked: a pending timer signal is part of the state
 * the runner compares, and so is steady; sigtimedwait() takes them at the
 * end (the one pending at the dump, then a new one).
 */
#define SIG_PROC   (SIGRTMIN + 1)
#define SIG_THREAD (SIGRTMIN + 2)

static int ids[5];
static volatile int done;
static volatile pid_t worker_tid;

/* Two signals of timer @id with @sival within a second each; NULL if so. */
static const char *take_two(int sig, int id, long sival)
{
	struct timespec ts = { 1, 0 };
	sigset_t set;
	siginfo_t si;

	sigemptyset(&set);
	sigaddset(&set, sig);
	for (int i = 0; i < 2; i++) {
		if (sigtimedwait(&set, &si, &ts) != sig)
			return "no timer signal within a second";
		if (si.si_code != SI_TIMER || si.si_timerid != id ||
		    si.si_value.sival_ptr != (void *)sival)
			return "a signal with the wrong code, timer or value";
	}
	return NULL;
}

static void *worker(void *arg __attribute__((unused)))
{
	worker_tid = gettid();
	futex_wait_while(&done, 0);
	return (void *)take_two(SIG_THREAD, ids[3], 0xd00d);
}

static int mk(int clock, int notify, int sig, long sival, int *id)
{
	struct sigevent ev = { .sigev_notify = notify, .sigev_signo = sig };

	ev.sigev_value.sival_ptr = (void *)sival;
	ev._sigev_un._tid = worker_tid;
	return syscall(SYS_timer_create, clock, &ev, id);
}

static int arm(int id, long vsec, long vnsec, long isec, long insec)
{
	struct itimerspec its = { { isec, insec }, { vsec, vnsec } };

	return syscall(SYS_timer_settime, id, 0, &its, NULL);
}

static int get(int id, struct itimerspec *its)
{
	return syscall(SYS_timer_gettime, id, its);
}

/* usleep() would return at the first timer signal. */
static void sleep_ms(long ms)
{
	struct timespec end;

	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_sec += ms / 1000;
	end.tv_nsec += ms % 1000 * 1000000;
	if (end.tv_nsec >= 1000000000)
		end.tv_sec++, end.tv_nsec -= 1000000000;
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &end, NULL))
		;
}

static char *read_timers(void)
{
	static char bufs[2][4096];
	static int n;
	char *buf = bufs[n++ & 1];
	FILE *f = fopen("/proc/self/timers", "r");
	size_t len;

	if (!f)
		return NULL;
	len = fread(buf, 1, sizeof(bufs[0]) - 1, f);
	buf[len] = 0;
	fclose(f);
	return buf;
}

int main(int argc, char **argv)
{
	struct itimerspec its, c_before;
	char *before, *after;
	const char *why;
	pthread_t th;
	sigset_t set;
	void *res;

	test_init(argc, argv);
	sigemptyset(&set);
	sigaddset(&set, SIG_PROC);
	sigaddset(&set, SIG_THREAD);
	sigprocmask(SIG_BLOCK, &set, NULL); /* the worker inherits it */
	if (pthread_create(&th, NULL, worker, NULL))
		return fail("pthread_create"), 1;
	while (!worker_tid)
		usleep(1000);
	if (mk(CLOCK_MONOTONIC, SIGEV_SIGNAL, SIG_PROC, 0xa11ce, &ids[0]) ||
	    mk(CLOCK_MONOTONIC, SIGEV_NONE, 0, 0, &ids[1]) ||
	    mk(CLOCK_REALTIME, SIGEV_NONE, 0, 0xc, &ids[2]) ||
	    mk(CLOCK_BOOTTIME, SIGEV_THREAD_ID, SIG_THREAD, 0xd00d, &ids[3]) ||
	    mk(CLOCK_PROCESS_CPUTIME_ID, SIGEV_SIGNAL, SIG_PROC, 0xe, &ids[4]) ||
	    syscall(SYS_timer_delete, ids[1])) /* a hole in the ids */
		return fail_errno("timer_create"), 1;
	if (arm(ids[0], 0, 10000000, 0, 10000000) || arm(ids[2], 1000, 0, 7, 0) ||
	    arm(ids[3], 0, 20000000, 0, 20000000) || get(ids[2], &c_before))
		return fail_errno("timer_settime"), 1;
	sleep_ms(100); /* both periodic timers have fired: their signals are pending */
	before = read_timers();
	test_daemon();
	test_waitsig();

	after = read_timers();
	if (!before || !after || strcmp(before, after))
		return fail("/proc/self/timers differs:\n%s---\n%s", before, after), 1;
	if (get(ids[2], &its) ||
	    its.it_interval.tv_sec != 7 || its.it_interval.tv_nsec ||
	    its.it_value.tv_sec > c_before.it_value.tv_sec || its.it_value.tv_sec < 400)
		return fail("the 1000 s timer reads %ld s, was %ld s, interval %ld s",
			    its.it_value.tv_sec, c_before.it_value.tv_sec, its.it_interval.tv_sec), 1;
	if (get(ids[4], &its) || its.it_value.tv_sec || its.it_value.tv_nsec)
		return fail("the disarmed timer is armed"), 1;
	if (get(ids[0], &its) || its.it_interval.tv_nsec != 10000000 ||
	    get(ids[3], &its) || its.it_interval.tv_nsec != 20000000)
		return fail("periodic timers lost their intervals"), 1;
	why = take_two(SIG_PROC, ids[0], 0xa11ce);
	if (why)
		return fail("process timer: %s", why), 1;
	done = 1;
	futex_wake_all(&done);
	pthread_join(th, &res);
	if (res)
		return fail("thread timer: %s", (char *)res), 1;
	pass();
	return 0;
}
