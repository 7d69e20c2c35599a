// SPDX-License-Identifier: MIT
/* Stopped tasks stopped again after a restore (stop.h). */
#define LOG_PREFIX "restore: "
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <sys/ptrace.h>
#include <sys/wait.h>

#include "base/log.h"
#include "restore/restore.h"
#include "restore/stop.h"

/* Resumes traced thread @tid until it traps in its group's stop by @sig. */
static int run_into_stop(pid_t tid, int sig)
{
	int st;

	if (ptrace(PTRACE_CONT, tid, 0, 0))
		return -errno;
	for (;;) {
		if (waitpid(tid, &st, __WALL) != tid)
			return -errno;
		if (!WIFSTOPPED(st))
			return -ECHILD;
		if (st >> 16 == PTRACE_EVENT_STOP)
			return 0;
		/* The delivery of the stop signal: let it stop the group. */
		if (ptrace(PTRACE_CONT, tid, 0, WSTOPSIG(st) == sig ? sig : 0))
			return -errno;
	}
}

static int stop_task(struct rst_ctx *rc, struct rst_task *t)
{
	uint64_t masks[t->nr_threads], all = ~0ULL;
	int ret = 0;

	for (int i = 0; i < t->nr_threads; i++) {
		pid_t tid = rst_host_pid(rc, t->pe->threads[i]);

		if (ptrace(PTRACE_GETSIGMASK, tid, sizeof(uint64_t), &masks[i]) ||
		    ptrace(PTRACE_SETSIGMASK, tid, sizeof(uint64_t), &all))
			return -errno;
	}
	if (rst_host_pid(rc, t->pid) <= 0) /* never kill(0): our own group */
		return -ESRCH;
	if (kill(rst_host_pid(rc, t->pid), t->stop_sig))
		return -errno;
	for (int i = 0; i < t->nr_threads && !ret; i++)
		ret = run_into_stop(rst_host_pid(rc, t->pe->threads[i]), t->stop_sig);
	for (int i = 0; i < t->nr_threads && !ret; i++)
		if (ptrace(PTRACE_SETSIGMASK, rst_host_pid(rc, t->pe->threads[i]),
			   sizeof(uint64_t), &masks[i]))
			ret = -errno;
	return ret;
}

int rst_stop_again(struct rst_ctx *rc)
{
	for (int i = 0; i < rc->nr_tasks; i++) {
		struct rst_task *t = &rc->tasks[i];
		int ret;

		if (t->zombie || !t->stop_sig)
			continue;
		ret = stop_task(rc, t);
		if (ret) {
			pr_err("can't stop %d again: %d\n", t->pid, ret);
			return ret;
		}
		pr_info("%d: stopped again by signal %d\n", t->pid, t->stop_sig);
	}
	return 0;
}
