// SPDX-License-Identifier: MIT
/* Scheduling state of a frozen task (sched.h). */
#define LOG_PREFIX "sched: "
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "base/log.h"
#include "base/proc.h"
#include "base/util.h"
#include "dump/sched.h"

#ifndef SCHED_RESET_ON_FORK
#define SCHED_RESET_ON_FORK 0x40000000
#endif
#ifndef SCHED_DEADLINE
#define SCHED_DEADLINE 6
#endif
#define AFFINITY_WORDS 16 /* 1024 CPUs, glibc's cpu_set_t */

static int dump_affinity(struct arena *a, pid_t tid, ThreadCoreEntry *tc)
{
	uint64_t mask[AFFINITY_WORDS];
	int n;

	memset(mask, 0, sizeof(mask));
	if (sched_getaffinity(tid, sizeof(mask), (cpu_set_t *)mask)) {
		pr_perror("sched_getaffinity(%d)", tid);
		return -errno;
	}
	for (n = AFFINITY_WORDS; n > 0 && !mask[n - 1]; n--)
		;
	tc->amber_cpu_affinity.data = arena_memdup(a, mask, sizeof(uint64_t) * (n ? n : 1));
	if (!tc->amber_cpu_affinity.data)
		return -ENOMEM;
	tc->amber_cpu_affinity.len = sizeof(uint64_t) * n;
	tc->has_amber_cpu_affinity = true;
	return 0;
}

int dump_thread_sched(struct arena *a, pid_t tid, ThreadCoreEntry *tc)
{
	struct sched_param sp = { 0 };
	int policy = sched_getscheduler(tid);

	if (policy < 0) {
		pr_perror("sched_getscheduler(%d)", tid);
		return -errno;
	}
	if ((policy & ~SCHED_RESET_ON_FORK) == SCHED_DEADLINE) {
		pr_err("thread %d runs under SCHED_DEADLINE: not supported\n", tid);
		return -EOPNOTSUPP;
	}
	if (sched_getparam(tid, &sp)) {
		pr_perror("sched_getparam(%d)", tid);
		return -errno;
	}
	errno = 0;
	tc->sched_nice = getpriority(PRIO_PROCESS, tid);
	if (errno) {
		pr_perror("getpriority(%d)", tid);
		return -errno;
	}
	tc->has_sched_nice = tc->has_sched_policy = tc->has_sched_prio = true;
	tc->sched_policy = policy;
	tc->sched_prio = sp.sched_priority;
	return dump_affinity(a, tid, tc);
}

int dump_oom_score_adj(pid_t pid, TaskCoreEntry *tc)
{
	cleanup_free char *s = read_proc(pid, "oom_score_adj", NULL);

	if (!s) {
		pr_err("can't read oom_score_adj of %d\n", pid);
		return -EIO;
	}
	tc->has_oom_score_adj = true;
	tc->oom_score_adj = strtol(s, NULL, 10);
	return 0;
}
