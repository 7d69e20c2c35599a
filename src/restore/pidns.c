// SPDX-License-Identifier: MIT
/*
 * Pid namespaces nested below the tree root's (pidns.h). A task one
 * level below its parent is the init of a new namespace: its parent
 * clones it with CLONE_NEWPID and set_tid {1, its pids above...}; every
 * other task is cloned into its parent's namespace with set_tid holding
 * its pid at each level up to the root's, so that it has its saved pid
 * in every namespace that sees it.
 */
#define LOG_PREFIX "pidns: "
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/log.h"
#include "base/pidmap.h"
#include "base/uapi.h"
#include "restore/pidns.h"
#include "restore/restore.h"
#include "restore/restorer_args.h"

#define PIDNS_PID_MAX 4194304 /* the kernel's PID_MAX_LIMIT on 64 bits */

_Static_assert(RST_SET_TID_MAX == PIDNS_NESTED_MAX + 1, "set_tid room");

/* Thread @i of @t's pid at @level (0: the root's namespace). */
static pid_t pid_at(const struct rst_task *t, int i, int level)
{
	if (!level)
		return t->pe->threads[i];
	return t->pe->amber_pidns_tids[i * t->pidns_level + level - 1];
}

/* The init of @t's namespace at @level (<= its own), NULL for the root's. */
static const struct rst_task *ns_at(const struct rst_task *t, int level)
{
	const struct rst_task *init = t->pidns_init;

	while (init && init->pidns_level > level)
		init = init->parent->pidns_init;
	return init;
}

pid_t rst_pidns_local(const struct rst_task *t, const struct rst_task *o)
{
	if (o->pidns_level < t->pidns_level || ns_at(o, t->pidns_level) != t->pidns_init)
		return 0;
	return pid_at(o, 0, t->pidns_level);
}

void rst_pidns_thread_tids(const struct rst_task *t, int i, int32_t *set_tid, uint32_t *n)
{
	for (int l = t->pidns_level; l >= 0; l--)
		set_tid[t->pidns_level - l] = pid_at(t, i, l);
	*n = t->pidns_level + 1;
}

/* The level, the pids, and the namespace's init of @t (its parent's checked). */
static int check_task(struct rst_ctx *rc, struct rst_task *t)
{
	const PstreeEntry *pe = t->pe;
	const struct rst_task *p = t->parent;
	int l = pe->has_amber_pidns_level ? pe->amber_pidns_level : 0;

	if (l > PIDNS_NESTED_MAX) {
		pr_err("pstree.img: pid %d is %d pid namespaces below the root's: at most %d\n",
		       t->pid, l, PIDNS_NESTED_MAX);
		return -EINVAL;
	}
	if (pe->n_amber_pidns_tids != (size_t)l * pe->n_threads) {
		pr_err("pstree.img: pid %d has %zu pids in nested pid namespaces, its level %d "
		       "and %zu threads want %zu\n", t->pid, pe->n_amber_pidns_tids, l,
		       pe->n_threads, (size_t)l * pe->n_threads);
		return -EINVAL;
	}
	for (size_t i = 0; i < pe->n_amber_pidns_tids; i++)
		if (!pe->amber_pidns_tids[i] || pe->amber_pidns_tids[i] > PIDNS_PID_MAX) {
			pr_err("pstree.img: pid %d: pid %u in a nested pid namespace is out of "
			       "range\n", t->pid, pe->amber_pidns_tids[i]);
			return -EINVAL;
		}
	t->pidns_level = l;
	if (!p) {
		if (l) {
			pr_err("pstree.img: the root %d is in a nested pid namespace\n", t->pid);
			return -EINVAL;
		}
		return 0;
	}
	if (l && t->zombie) {
		pr_err("pstree.img: pid %d is a zombie in a nested pid namespace: not supported\n",
		       t->pid);
		return -EOPNOTSUPP;
	}
	if (l == p->pidns_level && (!l || pid_at(t, 0, l) != 1)) {
		t->pidns_init = p->pidns_init;
		return 0;
	}
	if (l == p->pidns_level + 1 && pid_at(t, 0, l) == 1) {
		t->pidns_init = t;
		return 0;
	}
	pr_err("pstree.img: pid %d (level %d, pid %d there) under pid %d (level %d): a nested pid "
	       "namespace whose init is missing\n", t->pid, l, pid_at(t, 0, l), p->pid,
	       p->pidns_level);
	return -EINVAL;
}

/* No two threads of one nested namespace with one pid. */
static int check_unique(struct rst_ctx *rc)
{
	for (int a = 0; a < rc->nr_tasks; a++) {
		const struct rst_task *t = &rc->tasks[a];

		for (int b = a; b < rc->nr_tasks; b++) {
			const struct rst_task *o = &rc->tasks[b];

			for (int l = 1; l <= t->pidns_level && l <= o->pidns_level; l++) {
				if (ns_at(t, l) != ns_at(o, l))
					break;
				for (int i = 0; i < t->nr_threads; i++)
					for (int j = a == b ? i + 1 : 0; j < o->nr_threads; j++)
						if (pid_at(t, i, l) == pid_at(o, j, l))
							goto dup;
			}
			continue;
dup:
			pr_err("pstree.img: pids %d and %d share a pid in a nested pid namespace\n",
			       t->pid, o->pid);
			return -EINVAL;
		}
	}
	return 0;
}

/* pid_for_children: an init child of its own, in a one-thread task. */
static int check_children(struct rst_task *t)
{
	uint32_t want = t->pe->has_amber_pidns_children ? t->pe->amber_pidns_children : 0;

	if (!want)
		return 0;
	for (int i = 0; i < t->nr_children; i++)
		if ((uint32_t)t->children[i]->pid == want && t->children[i]->pidns_init == t->children[i]) {
			if (t->nr_threads != 1)
				break;
			t->pidns_children = t->children[i];
			return 0;
		}
	pr_err("pstree.img: pid %d: its children's pid namespace (amber_pidns_children %u) is not "
	       "that of an init child of one-thread task\n", t->pid, want);
	return -EINVAL;
}

/* Not load.c's rst_find_task(): load.c calls in here. */
static struct rst_task *find_task(struct rst_ctx *rc, pid_t pid)
{
	for (int i = 0; i < rc->nr_tasks; i++)
		if (rc->tasks[i].pid == pid)
			return &rc->tasks[i];
	return NULL;
}

/*
 * A process group whose leader the task can't see (in a namespace above)
 * is inherited: it must be its parent's.
 */
static int check_pgid(struct rst_ctx *rc, struct rst_task *t)
{
	struct rst_task *g = find_task(rc, t->pgid);

	if (!t->pidns_level || t->pgid == t->pid || (g && rst_pidns_local(t, g)) ||
	    t->pgid == t->parent->pgid)
		return 0;
	pr_err("pid %d: its process group %d is led outside its pid namespace and is not its "
	       "parent's: not supported\n", t->pid, t->pgid);
	return -EOPNOTSUPP;
}

int rst_pidns_check(struct rst_ctx *rc)
{
	int ret = 0, nested = 0;

	for (int i = 0; i < rc->nr_tasks && !ret; i++) {
		ret = check_task(rc, &rc->tasks[i]);
		nested += rc->tasks[i].pidns_init == &rc->tasks[i];
	}
	for (int i = 0; i < rc->nr_tasks && !ret; i++)
		ret = check_children(&rc->tasks[i]);
	for (int i = 0; i < rc->nr_tasks && !ret; i++)
		ret = check_pgid(rc, &rc->tasks[i]);
	if (!ret && nested)
		ret = check_unique(rc);
	if (!ret && nested)
		pr_info("%d nested pid namespace(s) below the root's\n", nested);
	return ret;
}

pid_t rst_pidns_fork(struct rst_task *t, struct rst_task *c, int *pidfd)
{
	struct clone_args_v2 args = { 0 };
	int32_t set_tid[RST_SET_TID_MAX]; /* pid_t[], innermost first */
	uint32_t n;

	rst_pidns_thread_tids(c, 0, set_tid, &n);
	*pidfd = -1;
	args.flags = c->pidns_init == c ? CLONE_NEWPID : 0;
	if (t->pidns_children == c) {
		args.flags |= CLONE_PIDFD;
		args.pidfd = (uintptr_t)pidfd;
	}
	args.exit_signal = SIGCHLD;
	args.set_tid = (uintptr_t)set_tid;
	args.set_tid_size = n;
	return syscall(__NR_clone3, &args, sizeof(args));
}

int rst_pidns_children(int pidfd)
{
	int ret = setns(pidfd, CLONE_NEWPID) ? -errno : 0;

	close(pidfd);
	return ret;
}
