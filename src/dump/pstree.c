// SPDX-License-Identifier: MIT
/*
 * Freezing the tree: every thread of every task is PTRACE_SEIZE'd and
 * PTRACE_INTERRUPT'ed. A task is frozen before its children are listed,
 * so it cannot fork behind our back; its thread list is re-read until no
 * new thread shows up.
 */
#define LOG_PREFIX "pstree: "
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <compel/infect.h>

#include "dump/dump.h"
#include "base/log.h"
#include "dump/unsupported.h"
#include "base/proc.h"
#include "base/util.h"

struct dump_task *pstree_find(struct dump_ctx *dc, pid_t pid)
{
	for (int i = 0; i < dc->nr_tasks; i++)
		if (dc->tasks[i]->pid == pid)
			return dc->tasks[i];
	return NULL;
}

/*
 * Waits for the interrupt stop of @tid, letting signals that race with it
 * through. A thread in a group stop reports that instead, with its stop
 * signal, which goes to *@stop_sig (0 otherwise).
 */
static int wait_interrupt_stop(pid_t tid, int *stop_sig)
{
	bool drained = false;
	int status;

	for (;;) {
		if (waitpid(tid, &status, __WALL) < 0) {
			pr_perror("waitpid %d", tid);
			return -errno;
		}
		/* The caller decides: a thread or a process may end as we freeze it. */
		if (!WIFSTOPPED(status)) {
			pr_info("thread %d exited while being frozen\n", tid);
			return -ESRCH;
		}
		if (status >> 16 == PTRACE_EVENT_STOP) {
			int sig = WSTOPSIG(status);

			*stop_sig = sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN ||
				    sig == SIGTTOU ? sig : 0;
			if (!*stop_sig || drained)
				return 0;
			/*
			 * A thread in a group stop traps for the seize, and maybe
			 * once more for our interrupt, which would then catch
			 * compel's first remote syscall. Make that second trap
			 * certain and take it now: with a trap pending, the
			 * thread traps again before it reaches its own code.
			 */
			drained = true;
			if (ptrace(PTRACE_INTERRUPT, tid, 0, 0) || ptrace(PTRACE_CONT, tid, 0, 0)) {
				pr_perror("can't drain the stop trap of %d", tid);
				return -errno;
			}
			continue;
		}
		/* A signal-delivery-stop: deliver it as if it came before us. */
		pr_debug("thread %d: passing signal %d through\n", tid, WSTOPSIG(status));
		if (ptrace(PTRACE_CONT, tid, 0, WSTOPSIG(status)) ||
		    ptrace(PTRACE_INTERRUPT, tid, 0, 0)) {
			pr_perror("resume %d", tid);
			return -errno;
		}
	}
}

/*
 * A thread's seccomp filters must not see compel's remote syscalls, but
 * PTRACE_O_SUSPEND_SECCOMP needs CAP_SYS_ADMIN: ask for it only for a
 * thread under seccomp (as CRIU does), so that an unprivileged dump of a
 * tree without seccomp can seize at all.
 */
static int suspend_seccomp(pid_t tid)
{
	struct proc_status st = { 0 };

	if (proc_parse_status(tid, tid, &st))
		return -ESRCH;
	if (!st.seccomp)
		return 0;
	if (ptrace(PTRACE_SETOPTIONS, tid, 0, PTRACE_O_SUSPEND_SECCOMP)) {
		int err = errno;

		pr_perror("thread %d is under seccomp (mode %d): suspending its filters%s", tid,
			  st.seccomp, err == EPERM ? " needs CAP_SYS_ADMIN" : "");
		return -err;
	}
	return 0;
}

/*
 * With the tree's cgroup frozen (@defer), the interrupt's stop comes only
 * once it is thawed: pstree_freeze() waits for it then, and suspends the
 * thread's seccomp there.
 */
static int seize_thread(pid_t tid, int *stop_sig, bool defer)
{
	int ret;

	if (ptrace(PTRACE_SEIZE, tid, 0, 0)) {
		int err = errno;
		struct proc_stat st;

		/* Exited after the walk saw it: a zombie (EPERM) or reaped (ESRCH). */
		if ((err == EPERM || err == ESRCH) &&
		    (proc_parse_stat(tid, &st) || st.state == 'Z' || st.state == 'X')) {
			pr_info("thread %d exited before it could be seized\n", tid);
			return -ESRCH;
		}
		pr_perror("can't seize thread %d", tid);
		return -err;
	}
	if (ptrace(PTRACE_INTERRUPT, tid, 0, 0)) {
		pr_perror("can't interrupt thread %d", tid);
		ptrace(PTRACE_DETACH, tid, 0, 0);
		return -errno;
	}
	if (defer)
		return 0;
	ret = wait_interrupt_stop(tid, stop_sig);
	/* Stopped: it can't install a filter behind our check any more. */
	if (!ret && (ret = suspend_seccomp(tid)))
		ptrace(PTRACE_DETACH, tid, 0, 0);
	return ret;
}

static bool task_has_thread(struct dump_task *t, pid_t tid)
{
	for (int i = 0; i < t->nr_threads; i++)
		if (t->threads[i].tid == tid)
			return true;
	return false;
}

static int seize_threads(struct dump_task *t, bool defer)
{
	bool grew = true;

	while (grew) {
		pid_t *tids = NULL;
		int nr = proc_list_threads(t->pid, &tids);

		/* Exited before its seize (an empty task/ too): the caller settles it. */
		if ((nr == -ENOENT || !nr) && !t->nr_threads) {
			free(tids);
			return -ESRCH;
		}
		if (nr < 0) {
			pr_err("can't list threads of %d: %s\n", t->pid, strerror(-nr));
			return nr;
		}
		grew = false;
		for (int i = 0; i < nr; i++) {
			struct dump_thread *n;
			int ret, stop_sig = 0;

			if (task_has_thread(t, tids[i]))
				continue;
			n = xrealloc_array(t->threads, t->nr_threads + 1, sizeof(*n));
			if (!n) {
				free(tids);
				return -ENOMEM;
			}
			t->threads = n;
			memset(&n[t->nr_threads], 0, sizeof(*n));
			n[t->nr_threads].tid = tids[i];
			ret = seize_thread(tids[i], &stop_sig, defer);
			if (!ret && tids[i] == t->pid && t->stop_sig)
				t->stop_sig = stop_sig ? stop_sig : SIGSTOP;
			if (ret == -ESRCH && tids[i] != t->pid)
				continue; /* a thread that is gone is no part of the tree */
			if (ret) {
				free(tids);
				return ret;
			}
			n[t->nr_threads++].seized = true;
			grew = true;
		}
		free(tids);
	}
	return 0;
}

/* The tree's own pids of @t's threads (NSpid): pidns.c, which maps them. */
static int record_ns_pids(struct dump_ctx *dc, struct dump_task *t)
{
	pid_t ns_tids[PIDNS_NESTED_MAX];
	int ret = dump_pidns_record(dc, t, t->pid, &t->vpid, ns_tids); /* the leader first */

	for (int i = 0; i < t->nr_threads && !ret; i++)
		ret = dump_pidns_record(dc, t, t->threads[i].tid, &t->threads[i].vtid,
					t->threads[i].ns_tids);
	return ret;
}

static struct dump_task *add_task(struct dump_ctx *dc, pid_t pid, struct dump_task *parent)
{
	struct dump_task **arr, *t = xzalloc(sizeof(*t));

	if (!t)
		return NULL;
	arr = xrealloc_array(dc->tasks, dc->nr_tasks + 1, sizeof(*arr));
	if (!arr) {
		free(t);
		return NULL;
	}
	dc->tasks = arr;
	dc->tasks[dc->nr_tasks++] = t;
	t->pid = pid;
	t->parent = parent;
	t->track.uffd = t->track.target_fd = -1;
	return t;
}

/* The task added last exited and was reaped before it could be frozen. */
static void drop_last_task(struct dump_ctx *dc)
{
	struct dump_task *t = dc->tasks[--dc->nr_tasks];

	free(t->threads);
	free(t);
}

/* @t is a zombie (@st its stat): saved as one, nothing to seize. */
static int freeze_zombie(struct dump_ctx *dc, struct dump_task *t, const struct proc_stat *st)
{
	pid_t ns_tids[PIDNS_NESTED_MAX];

	t->stop_sig = 0;
	t->zombie = true;
	t->ppid = st->ppid;
	t->pgid = st->pgid;
	t->sid = st->sid;
	t->exit_code = st->exit_code;
	return dump_pidns_record(dc, t, t->pid, &t->vpid, ns_tids);
}

/*
 * @pid was listed but is exiting: its namespaces are gone already
 * (do_exit drops them before it notifies the parent) or its threads
 * could not be seized. Wait, briefly, for it to become a zombie (its
 * parent is frozen, so it stays one) or, if its parent ignores SIGCHLD,
 * to be reaped. 0 with @st filled for a zombie, -ENOENT if gone.
 */
static int wait_exited(pid_t pid, struct proc_stat *st)
{
	for (int i = 0; i < 1000; i++) {
		int ret = proc_parse_stat(pid, st);

		if (ret)
			return ret;
		if (st->state == 'Z')
			return 0;
		if (st->state == 'X') /* EXIT_DEAD: being released */
			return -ENOENT;
		usleep(1000);
	}
	return -EBUSY;
}

/*
 * A seize succeeds until the exit is signalled, so a task seized in
 * do_exit shows no stop and loses its pid links: as its tracer, collect
 * each thread's exit, which hands the task back to its real parent.
 */
static void collect_exits(struct dump_task *t)
{
	for (int i = 0; i < t->nr_threads; i++) {
		int status;

		while (waitpid(t->threads[i].tid, &status, __WALL) < 0 && errno == EINTR)
			;
	}
	t->nr_threads = 0;
}

/* The exiting task added last: saved as a zombie, or dropped if reaped. */
static int settle_exited(struct dump_ctx *dc, struct dump_task *t, struct dump_task *parent)
{
	struct proc_stat st;
	int ret = wait_exited(t->pid, &st);

	if (!ret) {
		pr_info("process %d exited while its tree was being frozen: a zombie\n", t->pid);
		t->nr_threads = 0;
		ret = freeze_zombie(dc, t, &st);
		if (ret != -ENOENT)
			return ret;
		/* Reaped as we read it: its parent ignores SIGCHLD. */
	}
	if (ret == -ENOENT && parent) {
		pr_info("process %d exited and was reaped as its tree was frozen\n", t->pid);
		drop_last_task(dc);
		return 0;
	}
	pr_err("process %d vanished while the tree was frozen\n", t->pid);
	return ret == -EBUSY ? -ESRCH : ret;
}

static int freeze_task(struct dump_ctx *dc, pid_t pid, struct dump_task *parent)
{
	struct proc_stat st;
	struct dump_task *t;
	pid_t *kids = NULL;
	int nr, ret;

	ret = proc_parse_stat(pid, &st);
	/* A child whose parent ignores SIGCHLD is gone as soon as it exits. */
	if (ret == -ENOENT && parent) {
		pr_info("child %d of %d exited and was reaped as its tree was frozen\n", pid,
			parent->pid);
		return 0;
	}
	if (ret) {
		pr_err("no process %d: %s\n", pid, strerror(-ret));
		return ret;
	}
	t = add_task(dc, pid, parent);
	if (!t)
		return -ENOMEM;
	/* A child can exit between the parent's freeze and here: a zombie now. */
	ret = st.state == 'Z' ? 0 : dump_check_supported(pid, dc->opts->pid);
	if (ret == -ENOENT)
		return settle_exited(dc, t, parent);
	if (ret)
		return ret;
	if (st.state == 'Z') {
		ret = freeze_zombie(dc, t, &st);
		/* Reaped as we read it: its parent ignores SIGCHLD. */
		return ret == -ENOENT ? settle_exited(dc, t, parent) : ret;
	}
	if (st.state == 't') {
		pr_err("process %d is stopped by a tracer (state t): not supported\n", pid);
		return -EBUSY;
	}
	/* Stopped (a group stop): saved as such, and stopped again after a restore. */
	t->stop_sig = st.state == 'T';
	ret = seize_threads(t, dc->opts->freeze_cgroup != NULL);
	/*
	 * The process exited between the walk and its seize: its parent is
	 * frozen, so it stays a zombie, saved as one (a busy shell's
	 * children come and go all the time).
	 */
	if (ret == -ESRCH && !t->nr_threads)
		return settle_exited(dc, t, parent);
	if (ret == -ESRCH)
		pr_err("process %d (or one of its threads) exited while being frozen\n", pid);
	if (!ret)
		ret = record_ns_pids(dc, t);
	if (ret == -ENOENT && proc_task_exited(pid)) {
		collect_exits(t);
		return settle_exited(dc, t, parent);
	}
	if (ret == -ENOENT)
		pr_err("process %d lost its /proc entries while frozen\n", pid);
	if (ret)
		return ret;
	/* Re-read: ids are stable now that the task is frozen. */
	ret = proc_parse_stat(pid, &st);
	if (ret) {
		pr_err("can't read /proc/%d/stat of frozen %d: %s\n", pid, pid, strerror(-ret));
		return ret;
	}
	t->ppid = st.ppid;
	t->pgid = st.pgid;
	t->sid = st.sid;

	nr = proc_list_children(pid, &kids);
	if (nr < 0) {
		pr_err("can't list the children of %d: %s\n", pid, strerror(-nr));
		return nr;
	}
	for (int i = 0; i < nr && !ret; i++)
		ret = freeze_task(dc, kids[i], t);
	free(kids);
	return ret;
}

/* The root in a pid namespace other than amber's: the images hold its pids. */
static int own_pid_ns(pid_t root, bool *own)
{
	char path[64];
	struct stat theirs, mine;

	snprintf(path, sizeof(path), "/proc/%d/ns/pid", root);
	if (stat("/proc/self/ns/pid", &mine) || stat(path, &theirs)) {
		pr_perror("can't compare the pid namespaces of amber and %d", root);
		return -errno;
	}
	*own = theirs.st_ino != mine.st_ino || theirs.st_dev != mine.st_dev;
	return 0;
}

/* After the thaw: the stops of the threads seized in the frozen cgroup. */
static int wait_deferred_stops(struct dump_ctx *dc)
{
	int ret = 0;

	for (int i = 0; i < dc->nr_tasks; i++) {
		struct dump_task *t = dc->tasks[i];

		for (int j = 0; j < t->nr_threads; j++) {
			int stop_sig = 0, r;

			if (!t->threads[j].seized)
				continue;
			r = wait_interrupt_stop(t->threads[j].tid, &stop_sig);
			if (!r)
				r = suspend_seccomp(t->threads[j].tid);
			if (r == -ESRCH)
				pr_err("thread %d of %d exited after the cgroup's thaw\n",
				       t->threads[j].tid, t->pid);
			if (!r && t->threads[j].tid == t->pid && t->stop_sig)
				t->stop_sig = stop_sig ? stop_sig : SIGSTOP;
			/* Every one waited for, failed or not: pstree_release() needs them stopped. */
			if (r && !ret)
				ret = r;
		}
	}
	return ret;
}

/*
 * --freeze-cgroup (CRIU's, runc's freezer path): the walk happens in the
 * frozen cgroup, whose processes must all be the tree's; then the cgroup
 * is thawed and the seized threads stop for amber as they run again.
 */
static int freeze_in_cgroup(struct dump_ctx *dc, pid_t root)
{
	const char *cg = dc->opts->freeze_cgroup;
	int ret = dump_cg_freeze(cg, true), ret2;

	if (ret)
		return ret;
	ret = freeze_task(dc, root, NULL);
	if (!ret)
		ret = dump_cg_check_members(dc, cg);
	ret2 = dump_cg_freeze(cg, false);
	if (!ret)
		ret = ret2;
	ret2 = wait_deferred_stops(dc);
	return ret ? ret : ret2;
}

int pstree_freeze(struct dump_ctx *dc, pid_t root)
{
	int ret = own_pid_ns(root, &dc->pids.own_ns);

	if (!ret)
		ret = dump_pidns_root(dc, root);
	if (!ret)
		ret = dc->opts->freeze_cgroup ? freeze_in_cgroup(dc, root) : freeze_task(dc, root, NULL);
	if (!ret)
		ret = dump_pidns_check(dc);

	if (!ret)
		pr_info("froze %d task(s)\n", dc->nr_tasks);
	return ret;
}

static struct dump_thread *find_seized(struct dump_ctx *dc, pid_t tid)
{
	for (int i = 0; i < dc->nr_tasks; i++) {
		struct dump_task *t = dc->tasks[i];

		for (int j = 0; j < t->nr_threads; j++)
			if (t->threads[j].seized && t->threads[j].tid == tid)
				return &t->threads[j];
	}
	return NULL;
}

/*
 * Waits until every thread we killed has exited. Until then the tree's
 * pids are taken, and a restore started as soon as we return would find
 * them in use. As the tracer we are told of each exit first; a traced
 * thread stays a zombie until we collect it, and a leader is reported only
 * after its other threads are collected, so take the exits in any order.
 * Afterwards every killed process is a zombie of its real parent (or
 * gone), for that parent to reap.
 */
static void wait_killed(struct dump_ctx *dc)
{
	int left = 0;

	for (int i = 0; i < dc->nr_tasks; i++)
		for (int j = 0; j < dc->tasks[i]->nr_threads; j++)
			left += dc->tasks[i]->threads[j].seized;
	while (left > 0) {
		struct dump_thread *th;
		int status;
		pid_t tid = waitpid(-1, &status, __WALL);

		if (tid < 0) {
			if (errno == EINTR)
				continue;
			pr_warn("waiting for %d killed thread(s): %s\n", left, strerror(errno));
			return;
		}
		/* A stop reported before SIGKILL landed: the exit follows. */
		if (!WIFEXITED(status) && !WIFSIGNALED(status))
			continue;
		th = find_seized(dc, tid);
		if (th) {
			th->seized = false;
			left--;
		}
	}
	pr_debug("every killed thread has exited\n");
}

void pstree_release(struct dump_ctx *dc, bool kill_tree)
{
	if (kill_tree) {
		/* SIGKILL first, while still stopped: nothing runs after the dump. */
		for (int i = 0; i < dc->nr_tasks; i++)
			if (!dc->tasks[i]->zombie)
				kill(dc->tasks[i]->pid, SIGKILL);
		wait_killed(dc);
	}
	for (int i = dc->nr_tasks - 1; i >= 0; i--) {
		struct dump_task *t = dc->tasks[i];

		for (int j = 0; j < t->nr_threads; j++) {
			if (!t->threads[j].seized)
				continue;
			if (ptrace(PTRACE_DETACH, t->threads[j].tid, 0, 0) && !kill_tree)
				pr_perror("can't detach from %d", t->threads[j].tid);
			t->threads[j].seized = false;
		}
	}
}
