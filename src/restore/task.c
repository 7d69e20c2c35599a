// SPDX-License-Identifier: MIT
/*
 * What each restored task does for itself, with libc still mapped: its
 * session and group, its children (with their saved pids), its fds, cwd
 * and umask; then it builds the restorer's arguments inside the blob's
 * own mapping and jumps into the blob. Never returns on success.
 */
#define LOG_PREFIX "task: "
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "files/files.h"
#include "image/image.h"
#include "base/fault.h"
#include "base/log.h"
#include "restore/pidns.h"
#include "restore/premap.h"
#include "restore/restore.h"
#include "restore/task.h"
#include "restore/restorer_args.h"
#include "base/uapi.h"
#include "base/util.h"
#include "mem/vma.h"
#include "image/xsave.h"



static void report(struct rst_ctx *rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void report(struct rst_ctx *rc, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	n = snprintf(buf, sizeof(buf), "task %d: ", getpid());
	va_start(ap, fmt);
	n += vsnprintf(buf + n, sizeof(buf) - n, fmt, ap);
	va_end(ap);
	if (write(rc->status_fd, buf, min((size_t)n, sizeof(buf) - 1)) < 0) {
	}
}

int rst_clone_pid(pid_t pid, uint64_t flags)
{
	struct clone_args_v2 args = { 0 };
	uint64_t tid = pid;

	args.flags = flags;
	/* CLONE_PARENT: the parent's own exit signal is used, clone3 wants 0 here. */
	args.exit_signal = flags & CLONE_PARENT ? 0 : SIGCHLD;
	args.set_tid = (uintptr_t)&tid;
	args.set_tid_size = 1;
	return syscall(__NR_clone3, &args, sizeof(args));
}

int rst_clone_plain(uint64_t flags)
{
	struct clone_args_v2 args = { 0 };

	args.flags = flags;
	args.exit_signal = flags & CLONE_PARENT ? 0 : SIGCHLD;
	return syscall(__NR_clone3, &args, sizeof(args));
}

int rst_clone_newpid(uint64_t flags)
{
	struct clone_args_v2 args = { 0 };

	args.flags = CLONE_NEWPID | flags;
	args.exit_signal = flags & CLONE_PARENT ? 0 : SIGCHLD;
	return syscall(__NR_clone3, &args, sizeof(args));
}

/* The task's name (comm); threads cloned from this one later inherit it. */
static int set_comm(struct rst_task *t)
{
	const char *comm = t->cores[0]->tc->comm;

	return comm && prctl(PR_SET_NAME, comm) ? -errno : 0;
}

/* After the children are forked: they have their own. */
static int set_oom_score_adj(struct rst_ctx *rc, struct rst_task *t)
{
	TaskCoreEntry *tc = t->cores[0]->tc;
	char buf[16];
	int fd, n, ret = 0;

	/* Inside a user namespace it can't lower it: amber writes it (restore.c). */
	if (!tc->has_oom_score_adj || rc->ns.user)
		return 0;
	fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = snprintf(buf, sizeof(buf), "%d", tc->oom_score_adj);
	if (write(fd, buf, n) != n)
		ret = -errno;
	close(fd);
	return ret;
}

/*
 * A zombie's creds are not saved; it shows its parent's capabilities as
 * saved (it was forked with them), never amber's: an unprivileged
 * restore must not leave CAP_CHECKPOINT_RESTORE on it. Best effort.
 */
static void zombie_caps(struct rst_task *t)
{
	const ThreadCoreEntry *tc = t->parent ? t->parent->cores[0]->thread_core : NULL;
	const CredsEntry *ce = tc ? tc->creds : NULL;
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[2] = { 0 };

	if (!ce || ce->n_cap_eff < 2 || ce->n_cap_prm < 2 || ce->n_cap_inh < 2)
		return;
	for (int i = 0; i < 2; i++) {
		data[i].effective = ce->cap_eff[i];
		data[i].permitted = ce->cap_prm[i];
		data[i].inheritable = ce->cap_inh[i];
	}
	syscall(SYS_capset, &hdr, data);
}

static void __attribute__((noreturn)) become_zombie(struct rst_task *t)
{
	int st = t->exit_code;

	set_comm(t); /* best effort: a zombie shows its name, nothing more */
	zombie_caps(t);
	if (WIFSIGNALED(st)) {
		signal(WTERMSIG(st), SIG_DFL);
		kill(getpid(), WTERMSIG(st));
	}
	_exit(WEXITSTATUS(st));
}

/* Pids as the task's own pid namespace numbers them (pidns.c): the root's, or a nested one's. */
static int set_session(struct rst_ctx *rc, struct rst_task *t)
{
	pid_t self = rst_pidns_local(t, t);
	struct rst_task *leader = t->pgid != t->pid ? rst_find_task(rc, t->pgid) : NULL;
	pid_t pgid = leader ? rst_pidns_local(t, leader) : 0;

	if (t->sid == t->pid) {
		if (getsid(0) != self && setsid() < 0)
			return -errno;
	} else if (!t->parent && !rc->opts->shell_job && getsid(0) != t->sid) {
		report(rc, "session %d is outside the tree: restore with --shell-job\n", t->sid);
		return -EINVAL;
	}
	if (t->pgid == t->pid && getpgid(0) != self && setpgid(0, 0))
		return -errno;
	/* A leader outside its namespace: the group is its parent's, inherited (pidns.c). */
	if (pgid && getpgid(0) != pgid && setpgid(0, pgid))
		return -errno;
	return 0;
}

static int fork_children(struct rst_ctx *rc, struct rst_task *t)
{
	int children_ns = -1;

	for (int i = 0; i < t->nr_children; i++) {
		struct rst_task *c = t->children[i];
		int pidfd;
		/* Its pid in every namespace, an init in a new one (pidns.c). */
		pid_t pid = rst_pidns_fork(t, c, &pidfd);

		if (pid < 0) {
			int err = errno;

			report(rc, "clone3 for pid %d: %s\n", c->pid, strerror(err));
			if (children_ns >= 0)
				close(children_ns);
			return -err;
		}
		if (pid == 0) {
			if (children_ns >= 0)
				close(children_ns);
			if (c->zombie)
				become_zombie(c);
			rst_task_run(rc, c);
		}
		if (pidfd >= 0)
			children_ns = pidfd;
	}
	/* unshare(CLONE_NEWPID) as saved: its later children go to that init's namespace. */
	if (children_ns >= 0) {
		int ret = rst_pidns_children(children_ns);

		if (ret) {
			report(rc, "setns to the pid namespace of its child %d: %s\n",
			       t->pidns_children->pid, strerror(-ret));
			return ret;
		}
	}
	/* Zombies must be dead before the restorer drops the SIGCHLDs they sent. */
	for (int i = 0; i < t->nr_children; i++) {
		siginfo_t si;

		if (t->children[i]->zombie &&
		    waitid(P_PID, t->children[i]->pid, &si, WEXITED | WNOWAIT))
			return -errno;
	}
	return 0;
}

static int restore_fs(struct rst_ctx *rc, struct rst_task *t)
{
	int root = files_open_reg(&rc->files, t->fs->root_id, O_RDONLY | O_DIRECTORY);
	int cwd = files_open_reg(&rc->files, t->fs->cwd_id, O_RDONLY | O_DIRECTORY);
	struct stat a, b;
	int ret = 0;

	if (root < 0 || cwd < 0) {
		report(rc, "can't open root or cwd\n");
		ret = -ENOENT;
		goto out;
	}
	/* Another root: the restorer chroots, after every open by amber's paths (/proc, exe). */
	if (fstat(root, &a) == 0 && stat("/", &b) == 0 &&
	    (a.st_dev != b.st_dev || a.st_ino != b.st_ino)) {
		t->chroot = true;
		t->root_fd = steal_fd(root);
		t->cwd_fd = steal_fd(cwd);
	} else if (fchdir(cwd)) {
		ret = -errno;
	}
	umask(t->fs->has_umask ? t->fs->umask : 022);
out:
	if (root >= 0)
		close(root);
	if (cwd >= 0)
		close(cwd);
	return ret;
}

static void __attribute__((noreturn)) fail_task(struct rst_ctx *rc, const char *what, int err)
{
	report(rc, "%s failed: %s\n", what, strerror(err < 0 ? -err : err));
	_exit(43);
}

void __attribute__((noreturn)) rst_task_run(struct rst_ctx *rc, struct rst_task *t)
{
	int ret;

	/* Before its children: they are born in the root's new namespaces. */
	ret = t->parent ? 0 : rst_ns_enter_root(rc);
	if (ret)
		fail_task(rc, "making the tree's namespaces", ret);
	if (!t->parent) {
		struct stat ns;

		rc->root_pidns_ino = stat("/proc/self/ns/pid", &ns) ? 0 : ns.st_ino;
	}
	/* In its new mounts: the files its children share, before they fork. */
	ret = t->parent ? 0 : files_open_deferred(&rc->files);
	if (ret)
		fail_task(rc, "opening the shared files in the tree's mounts", ret);
	ret = set_session(rc, t);
	if (ret)
		fail_task(rc, "session/process group", ret);
	/* Before the fork: the children inherit these pages, shared. */
	ret = rst_premap(rc, t);
	if (ret)
		fail_task(rc, "laying out private memory", ret);
	ret = fork_children(rc, t);
	if (!ret && fault_injected("restore-forked"))
		ret = -EIO;
	if (ret)
		fail_task(rc, "forking children", ret);
	rc->files.status_fd = rc->status_fd;
	ret = files_restore_task(&rc->files, t - rc->tasks);
	if (ret)
		fail_task(rc, "restoring fds", ret);
	ret = files_restore_ctty(&rc->files, t->pid);
	if (ret)
		fail_task(rc, "restoring the controlling terminal", ret);
	ret = restore_fs(rc, t);
	if (ret)
		fail_task(rc, "restoring cwd/root", ret);
	if (personality(t->cores[0]->tc->personality) < 0)
		fail_task(rc, "personality", errno);
	ret = set_comm(t);
	if (ret)
		fail_task(rc, "setting comm", ret);
	ret = set_oom_score_adj(rc, t);
	if (ret)
		fail_task(rc, "setting oom_score_adj", ret);
	ret = rst_jump_to_blob(rc, t);
	fail_task(rc, "preparing the restorer", ret);
}
