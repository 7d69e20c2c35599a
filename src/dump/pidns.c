// SPDX-License-Identifier: MIT
/*
 * Pid namespaces nested below the tree root's (a sandbox's `unshare
 * --pid --fork`, a task cloned with CLONE_NEWPID): every task of such a
 * namespace must be in the tree, its init a child of a task of the
 * namespace just above. The images keep CRIU's pids (the root's
 * namespace's) and add each thread's pids in the inner namespaces
 * (pstree_entry's amber_pidns_*, docs/images.md).
 */
#define LOG_PREFIX "pidns: "
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/log.h"
#include "base/proc.h"
#include "base/uapi.h"
#include "base/util.h"
#include "dump/dump.h"

#ifndef __NR_pidfd_getfd
#define __NR_pidfd_getfd 438
#endif
#ifndef F_GETOWN_EX
#define F_GETOWN_EX 16
#endif

static int ns_inode(pid_t pid, const char *link, uint64_t *ino)
{
	char path[64];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/%d/ns/%s", pid, link);
	if (stat(path, &st))
		return -errno;
	*ino = st.st_ino;
	return 0;
}

int dump_pidns_root(struct dump_ctx *dc, pid_t root)
{
	pid_t pids[PIDNS_MAX_LEVELS];
	int ret = ns_inode(root, "pid", &dc->root_pidns_ino);

	if (ret) {
		pr_perror("can't read the pid namespace of %d", root);
		return ret;
	}
	dc->root_pid_levels = 1;
	return dc->pids.own_ns ? proc_ns_pids(root, pids, PIDNS_MAX_LEVELS, &dc->root_pid_levels)
			       : 0;
}

/*
 * The first thread of @t recorded (its leader) says which namespace it is
 * in; a thread is always in its leader's.
 */
int dump_pidns_record(struct dump_ctx *dc, struct dump_task *t, pid_t tid, pid_t *vtid,
		      pid_t *ns_tids)
{
	pid_t pids[PIDNS_MAX_LEVELS];
	int levels, ret;

	*vtid = tid;
	if (tid == t->pid) {
		ret = ns_inode(tid, "pid", &t->pidns_ino);
		/* A zombie has no namespace links: its NSpid tells. */
		if (ret && !t->zombie) {
			if (ret != -ENOENT) /* ENOENT: it is exiting, the caller's to settle */
				pr_err("can't read /proc/%d/ns/pid: %s\n", tid, strerror(-ret));
			return ret;
		}
		if (!ret && t->pidns_ino == dc->root_pidns_ino && !dc->pids.own_ns)
			return 0;
	} else if (!t->pidns_level && !dc->pids.own_ns) {
		return 0;
	}
	ret = proc_ns_pids(tid, pids, PIDNS_MAX_LEVELS, &levels);
	if (ret) {
		if (ret != -ENOENT) /* ENOENT: it exited meanwhile, the caller's to settle */
			pr_err("can't read the pids of thread %d: %s\n", tid, strerror(-ret));
		return ret;
	}
	if (levels < dc->root_pid_levels) {
		pr_err("thread %d is in a pid namespace above the tree root's\n", tid);
		return -EOPNOTSUPP;
	}
	if (tid == t->pid)
		t->pidns_level = levels - dc->root_pid_levels;
	else if (levels - dc->root_pid_levels != t->pidns_level)
		return -EINVAL; /* the kernel keeps a thread group in one namespace */
	if (t->pidns_level > PIDNS_NESTED_MAX) {
		pr_err("process %d is %d pid namespaces below the tree root's: at most %d are "
		       "supported\n", t->pid, t->pidns_level, PIDNS_NESTED_MAX);
		return -EOPNOTSUPP;
	}
	*vtid = pids[dc->root_pid_levels - 1];
	for (int i = 0; i < t->pidns_level; i++)
		ns_tids[i] = pids[dc->root_pid_levels + i];
	return dc->pids.own_ns ? pid_map_add(&dc->pids, tid, *vtid) : 0;
}

/* The image id of @t's namespace: one per inode. */
static int name_pidns(struct dump_ctx *dc, struct dump_task *t)
{
	for (int i = 0; i < dc->nr_tasks; i++) {
		struct dump_task *o = dc->tasks[i];

		if (o != t && o->pidns_id && o->pidns_ino == t->pidns_ino) {
			t->pidns_id = o->pidns_id;
			return 0;
		}
	}
	t->pidns_id = dump_new_id(dc);
	pr_info("process %d (pid %d there) is init of pid namespace %u, %d below the root's\n",
		t->pid, t->threads[0].ns_tids[t->pidns_level - 1], t->pidns_id, t->pidns_level);
	return 0;
}

/* Innermost pid of @t: in its own namespace. */
static pid_t own_pid(const struct dump_task *t)
{
	return t->pidns_level ? t->threads[0].ns_tids[t->pidns_level - 1] : t->vpid;
}

/*
 * The pids a nested task's fds name are in its own namespace (pidfds,
 * F_SETOWN owners), the images' in the root's: refused, named.
 */
static int check_nested_fds(const struct dump_task *t)
{
	char path[64];
	DIR *d;
	struct dirent *de;
	int pidfd, ret = 0;

	pidfd = syscall(__NR_pidfd_open, t->pid, 0);
	if (pidfd < 0)
		return -errno;
	snprintf(path, sizeof(path), "/proc/%d/fdinfo", t->pid);
	d = opendir(path);
	if (!d) {
		ret = -errno;
		close(pidfd);
		return ret;
	}
	while (!ret && (de = readdir(d))) {
		cleanup_free char *info = NULL;
		struct f_owner_ex owner = { 0 };
		char rel[300];
		int fd;

		if (de->d_name[0] == '.')
			continue;
		snprintf(rel, sizeof(rel), "fdinfo/%s", de->d_name);
		info = read_proc(t->pid, rel, NULL);
		if (info && (!strncmp(info, "Pid:", 4) || strstr(info, "\nPid:"))) {
			pr_err("fd %s of pid %d is a pidfd, and %d is in a nested pid namespace: "
			       "not supported\n", de->d_name, t->vpid, t->vpid);
			ret = -EOPNOTSUPP;
			break;
		}
		fd = syscall(__NR_pidfd_getfd, pidfd, atoi(de->d_name), 0);
		if (fd < 0)
			continue; /* closed meanwhile: the files dump says */
		if (!fcntl(fd, F_GETOWN_EX, &owner) && owner.pid) {
			pr_err("fd %s of pid %d has an owner (F_SETOWN %d), and %d is in a nested "
			       "pid namespace: not supported\n", de->d_name, t->vpid, owner.pid,
			       t->vpid);
			ret = -EOPNOTSUPP;
		}
		close(fd);
	}
	closedir(d);
	close(pidfd);
	return ret;
}

/* A timer signalling one thread names it in the task's namespace. */
static int check_nested_timers(const struct dump_task *t)
{
	cleanup_free char *buf = read_proc(t->pid, "timers", NULL);

	if (buf && strstr(buf, "/tid.")) {
		pr_err("pid %d has a POSIX timer signalling a thread (SIGEV_THREAD_ID) and is in a "
		       "nested pid namespace: not supported\n", t->vpid);
		return -EOPNOTSUPP;
	}
	return 0;
}

/* pid_for_children (unshare --pid): its own, or its init child's namespace. */
static int check_children_ns(struct dump_ctx *dc, struct dump_task *t)
{
	uint64_t ino;
	int ret = ns_inode(t->pid, "pid_for_children", &ino);

	if (ret == -ENOENT)
		return 0; /* a kernel before 4.12 */
	if (ret) {
		pr_err("can't read /proc/%d/ns/pid_for_children: %s\n", t->pid, strerror(-ret));
		return ret;
	}
	if (ino == t->pidns_ino)
		return 0;
	for (int i = 0; i < dc->nr_tasks; i++) {
		struct dump_task *c = dc->tasks[i];

		if (c->parent != t || c->zombie || c->pidns_ino != ino ||
		    c->pidns_level != t->pidns_level + 1)
			continue;
		if (t->nr_threads > 1) {
			pr_err("pid %d has threads and its children go to another pid namespace "
			       "(unshare(CLONE_NEWPID)): not supported\n", t->vpid);
			return -EOPNOTSUPP;
		}
		t->pidns_children = c->vpid;
		return 0;
	}
	pr_err("pid %d unshared a pid namespace for its children (unshare(CLONE_NEWPID)) whose "
	       "init is not in the tree (not forked yet, or exited: the namespace is dying): "
	       "not supported\n", t->vpid);
	return -EOPNOTSUPP;
}

/*
 * A proc of a nested namespace on the tree's /proc (`unshare --pid --fork
 * --mount-proc` under the root): the restore would have to mount it from
 * inside that namespace. Refused, named, before the mounts are read.
 */
static int check_nested_proc(struct dump_ctx *dc)
{
	pid_t root = dc->tasks[0]->pid;
	char path[64];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/%d/root/proc/1/ns/pid", root);
	if (stat(path, &st) || st.st_ino == dc->root_pidns_ino)
		return 0;
	for (int i = 0; i < dc->nr_tasks; i++) {
		const struct dump_task *t = dc->tasks[i];

		if (t->pidns_level && t->pidns_ino == st.st_ino) {
			pr_err("the /proc of process %d shows the nested pid namespace of pid %d "
			       "(mount --mount-proc'ed by it): not supported, its restore would have "
			       "to mount it from inside that namespace\n", root, t->vpid);
			return -EOPNOTSUPP;
		}
	}
	return 0;
}

int dump_pidns_check(struct dump_ctx *dc)
{
	int ret = 0;

	for (int i = 0; i < dc->nr_tasks && !ret; i++) {
		struct dump_task *t = dc->tasks[i], *p = t->parent;

		if (t->zombie) {
			if (t->pidns_level) {
				pr_err("pid %d is a zombie in a nested pid namespace: not "
				       "supported\n", t->vpid);
				ret = -EOPNOTSUPP;
			}
			continue;
		}
		ret = check_children_ns(dc, t);
		if (ret || !p)
			continue;
		if (t->pidns_ino == p->pidns_ino)
			t->pidns_id = p->pidns_id;
		else if (t->pidns_level == p->pidns_level + 1 && own_pid(t) == 1)
			ret = name_pidns(dc, t);
		else if (t->pidns_level == p->pidns_level + 1) {
			pr_err("pid %d is pid %d of a pid namespace whose init is not its parent %d "
			       "(it joined the namespace, or its init exited): not supported\n",
			       t->vpid, own_pid(t), p->vpid);
			ret = -EOPNOTSUPP;
		} else {
			pr_err("pid %d is in a pid namespace other than its parent's (%d) and not "
			       "one below it (it joined one with setns): not supported\n", t->vpid,
			       p->vpid);
			ret = -EOPNOTSUPP;
		}
		if (!ret && t->pidns_level)
			ret = check_nested_fds(t);
		if (!ret && t->pidns_level)
			ret = check_nested_timers(t);
	}
	return ret ? ret : check_nested_proc(dc);
}

void dump_pidns_fill(const struct dump_task *t, PstreeEntry *pe, uint32_t *tids)
{
	int n = t->zombie ? 1 : t->nr_threads;

	if (t->pidns_children) {
		pe->has_amber_pidns_children = true;
		pe->amber_pidns_children = t->pidns_children;
	}
	if (!t->pidns_level)
		return;
	pe->has_amber_pidns_level = true;
	pe->amber_pidns_level = t->pidns_level;
	for (int i = 0; i < n; i++)
		for (int l = 0; l < t->pidns_level; l++)
			tids[i * t->pidns_level + l] = t->threads[i].ns_tids[l];
	pe->n_amber_pidns_tids = (size_t)n * t->pidns_level;
	pe->amber_pidns_tids = tids;
}
