// SPDX-License-Identifier: GPL-2.0
/*
 * Scheduling state per thread: policy (SCHED_OTHER with nice, SCHED_BATCH,
 * SCHED_RR with a priority and SCHED_RESET_ON_FORK, SCHED_IDLE), nice, CPU
 * affinity, parent-death signal; per process: oom_score_adj. Each thread
 * sets its own and checks it after the restore.
 */
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "zdtm.h"

#define NR 4

struct want {
	int policy, prio, nice, cpu, pdeath; /* cpu -1: every CPU */
};

static struct want wants[NR] = {
	{ SCHED_OTHER, 0, 3, -1, SIGUSR2 },	/* the main thread */
	{ SCHED_BATCH, 0, 7, 0, 0 },
	{ SCHED_RR | SCHED_RESET_ON_FORK, 3, 0, 1, 0 },
	{ SCHED_IDLE, 0, 0, 1, SIGUSR1 },
};
static cpu_set_t all_cpus;
static pthread_barrier_t ready;
static volatile int done;
static char errs[NR][128];

static int set_mine(const struct want *w)
{
	struct sched_param sp = { .sched_priority = w->prio };
	cpu_set_t set = all_cpus;

	if (w->cpu >= 0) {
		CPU_ZERO(&set);
		CPU_SET(w->cpu, &set);
	}
	if (setpriority(PRIO_PROCESS, 0, w->nice) || sched_setscheduler(0, w->policy, &sp) ||
	    sched_setaffinity(0, sizeof(set), &set) || prctl(PR_SET_PDEATHSIG, w->pdeath))
		return -1;
	return 0;
}

static void check_mine(const struct want *w, char *err)
{
	struct sched_param sp;
	cpu_set_t set, want = all_cpus;
	int pdeath = -1, policy = sched_getscheduler(0), nice;

	errno = 0;
	nice = getpriority(PRIO_PROCESS, 0);
	if (w->cpu >= 0) {
		CPU_ZERO(&want);
		CPU_SET(w->cpu, &want);
	}
	sched_getparam(0, &sp);
	sched_getaffinity(0, sizeof(set), &set);
	prctl(PR_GET_PDEATHSIG, &pdeath);
	if (policy != w->policy || sp.sched_priority != w->prio || nice != w->nice ||
	    !CPU_EQUAL(&set, &want) || pdeath != w->pdeath)
		snprintf(err, 128, "policy %#x prio %d nice %d cpus %d pdeath %d, want %#x %d %d %d %d",
			 policy, sp.sched_priority, nice, CPU_COUNT(&set), pdeath, w->policy,
			 w->prio, w->nice, w->cpu, w->pdeath);
}

static void *worker(void *arg)
{
	long i = (long)arg;

	if (set_mine(&wants[i]))
		snprintf(errs[i], 128, "setting: %s", strerror(errno));
	pthread_barrier_wait(&ready);
	futex_wait_while(&done, 0);
	check_mine(&wants[i], errs[i]);
	return NULL;
}

static int set_oom(int v)
{
	FILE *f = fopen("/proc/self/oom_score_adj", "w");

	return !f || fprintf(f, "%d", v) < 0 || fclose(f) ? -1 : 0;
}

int main(int argc, char **argv)
{
	pthread_t th[NR];
	int oom = 0;
	FILE *f;

	test_init(argc, argv);
	/* Parent-death signals do come (our launcher exits, and so does amber after a restore -d). */
	signal(SIGUSR1, SIG_IGN);
	signal(SIGUSR2, SIG_IGN);
	sched_getaffinity(0, sizeof(all_cpus), &all_cpus);
	if (!CPU_ISSET(0, &all_cpus) || !CPU_ISSET(1, &all_cpus))
		test_skip("needs CPUs 0 and 1");
	pthread_barrier_init(&ready, NULL, NR);
	for (long i = 1; i < NR; i++)
		if (pthread_create(&th[i], NULL, worker, (void *)i))
			return fail("pthread_create"), 1;
	if (set_mine(&wants[0]) || set_oom(123))
		return fail_errno("setting"), 1;
	pthread_barrier_wait(&ready);
	for (int i = 1; i < NR; i++)
		if (errs[i][0]) /* SCHED_RR refused: no RT budget for this cgroup */
			test_skip("thread %d: %s", i, errs[i]);
	test_daemon();
	test_waitsig();

	check_mine(&wants[0], errs[0]);
	done = 1;
	futex_wake_all(&done);
	for (int i = 1; i < NR; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < NR; i++)
		if (errs[i][0])
			return fail("thread %d: %s", i, errs[i]), 1;
	f = fopen("/proc/self/oom_score_adj", "r");
	if (!f || fscanf(f, "%d", &oom) != 1 || oom != 123)
		return fail("oom_score_adj %d, want 123", oom), 1;
	fclose(f);
	pass();
	return 0;
}
