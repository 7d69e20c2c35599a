// SPDX-License-Identifier: MIT
/*
 * pidfds, as CRIU 4.x keeps them (pidfd_entry, type PIDFD).
 *
 * Dump: fdinfo says which process a pidfd refers to ("Pid:"), -1 once
 * that process was reaped. A live one must name a process of the dumped
 * tree (itself, a parent, a child, a zombie of the tree): the restored
 * tree has the same pids. A pidfd of a thread other than a leader
 * (PIDFD_THREAD) is refused: threads are created by the restorer, after
 * the fds. A pidfd of a live process that several tasks share (opened
 * before a fork) is refused too (one_task, and again at load): each task
 * opens its own at restore.
 *
 * Restore: a live pidfd is opened by its task with pidfd_open() once the
 * target exists (every task is forked before any task opens its fds, but
 * not every one before this task does: it waits for it). A dead one is
 * made in amber before the tree is forked, as CRIU does: a helper process
 * is forked, a pidfd of it opened for every dead pidfd with the same
 * pidfs inode, and the helper killed and reaped; the tasks inherit them.
 */
#define LOG_PREFIX "pidfd: "
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/log.h"
#include "base/uapi.h"
#include "base/util.h"
#include "files/files_internal.h"
#include "pidfd.pb-c.h"

#ifndef PIDFD_THREAD
#define PIDFD_THREAD O_EXCL /* Linux 6.9, not in our 6.1 headers */
#endif
#define PIDFD_FLAGS (O_NONBLOCK | PIDFD_THREAD)
#define PIDFD_WAIT_US 1000
#define PIDFD_WAIT_TRIES 20000 /* 20 s for a task of the tree to be forked */

/* ---- dump ---- */

static bool pidfd_match(const struct fd_desc *d)
{
	return !strcmp(d->link, "anon_inode:[pidfd]");
}

/* A live pidfd is opened by its task at restore: one task's only. */
static bool pidfd_one_task(const struct fd_desc *d)
{
	char name[64];
	cleanup_free char *buf = NULL;
	const char *pid_s;

	snprintf(name, sizeof(name), "fdinfo/%d", d->fd);
	buf = read_proc(d->pid, name, NULL);
	pid_s = buf ? files_fdinfo_field(buf, "Pid:") : NULL;
	return !pid_s || atoi(pid_s) != -1;
}

static bool in_tree(struct files_dump_ctx *fc, pid_t pid)
{
	for (int i = 0; i < fc->nr_tree_pids; i++)
		if (fc->tree_pids[i] == pid)
			return true;
	return false;
}

/* The thread group of @tid, or -errno. */
static pid_t tgid_of(pid_t tid)
{
	cleanup_free char *buf = read_proc(tid, "status", NULL);
	const char *v = buf ? files_fdinfo_field(buf, "Tgid:") : NULL;

	return v ? (pid_t)atoi(v) : -ESRCH;
}

static int pidfd_dump(struct files_dump_ctx *fc, const struct fd_desc *d, uint32_t *id)
{
	PidfdEntry pe = PIDFD_ENTRY__INIT;
	FownEntry fown = FOWN_ENTRY__INIT;
	FileEntry fe = FILE_ENTRY__INIT;
	cleanup_free char *buf = NULL;
	cleanup_close int fd = -1;
	const char *pid_s, *ino_s;
	char name[64];
	int ret;

	snprintf(name, sizeof(name), "fdinfo/%d", d->fd);
	buf = read_proc(d->pid, name, NULL);
	pid_s = buf ? files_fdinfo_field(buf, "Pid:") : NULL;
	ino_s = buf ? files_fdinfo_field(buf, "ino:") : NULL;
	if (!pid_s || !ino_s) {
		pr_err("fd %d of pid %d: a pidfd without Pid: or ino: in its fdinfo\n", d->fd,
		       d->pid);
		return -EINVAL;
	}
	pe.nspid = atoi(pid_s);
	pe.ino = strtoul(ino_s, NULL, 10);
	pe.flags = d->flags & ~O_ACCMODE;
	if (pe.flags & ~PIDFD_FLAGS) {
		pr_err("fd %d of pid %d: a pidfd with flags %#o\n", d->fd, d->pid, pe.flags);
		return -ENOTSUP;
	}
	if (pe.nspid != -1 && !in_tree(fc, pe.nspid)) {
		pid_t tgid = tgid_of(pe.nspid);

		if (tgid > 0 && tgid != pe.nspid && in_tree(fc, tgid))
			pr_err("fd %d of pid %d: a pidfd of thread %d of pid %d (PIDFD_THREAD) is not "
			       "supported: threads are made after the fds at restore\n", d->fd,
			       d->pid, pe.nspid, tgid);
		else
			pr_err("fd %d of pid %d: a pidfd of pid %d, which is outside the dumped tree\n",
			       d->fd, d->pid, pe.nspid);
		return -ENOTSUP;
	}
	/* The target as the tree sees it: pidfd_open() of it runs inside the tree. */
	if (pe.nspid != -1)
		pe.nspid = fd_ns_pid(d, pe.nspid);
	fd = files_getfd(d);
	if (fd < 0)
		return fd;
	ret = files_dump_fown(d, fd, &fown);
	if (ret)
		return ret;
	*id = files_new_id(fc);
	pe.id = *id;
	pe.fown = &fown;
	fe.type = FD_TYPES__PIDFD;
	fe.id = *id;
	fe.pidfd = &pe;
	pr_info("fd %d of pid %d: pidfd of %d (ino %u, flags %#o)\n", d->fd, d->pid, pe.nspid,
		pe.ino, pe.flags);
	return files_write_entry(fc, &fe);
}

/* ---- restore ---- */

static bool is_task(struct files_rst *fr, pid_t pid)
{
	for (int i = 0; i < fr->nr_tasks; i++)
		if (fr->tasks[i].pid == pid)
			return true;
	return false;
}

static int pidfd_check(struct files_rst_ctx *fc, const FileEntry *fe)
{
	const PidfdEntry *pe = fe->pidfd;
	int ret = files_check_sub(fe, pe != NULL, pe ? pe->id : 0);

	if (ret)
		return ret;
	if (pe->flags & ~PIDFD_FLAGS) {
		pr_err("files.img: pidfd %u has the flags %#o\n", fe->id, pe->flags);
		return -EINVAL;
	}
	if (pe->nspid != -1 && (pe->nspid <= 0 || !is_task(fc->st, pe->nspid))) {
		pr_err("files.img: pidfd %u refers to pid %d, which is not a task of the tree\n",
		       fe->id, pe->nspid);
		return -EINVAL;
	}
	return files_check_fown(fe, pe->fown);
}

/* Forks a process that only waits to be killed; its pid, or -errno. */
static pid_t fork_helper(void)
{
	pid_t pid = fork();

	if (pid == 0) {
		for (;;)
			pause();
	}
	if (pid < 0)
		pr_perror("can't fork the process of a dead pidfd");
	return pid < 0 ? -errno : pid;
}

/* Every dead pidfd with pidfs inode @ino, opened on one helper's pid. */
static int make_dead(struct files_rst_ctx *fc, uint32_t ino)
{
	struct files_rst *fr = fc->st;
	pid_t helper = fork_helper();
	int ret = 0, st;

	if (helper < 0)
		return helper;
	for (int i = 0; !ret && i < fr->nr_files; i++) {
		struct rfile *rf = &fr->files[i];
		PidfdEntry *pe = rf->fe->pidfd;
		int fd;

		if (rf->fe->type != FD_TYPES__PIDFD || pe->nspid != -1 || pe->ino != ino)
			continue;
		fd = syscall(__NR_pidfd_open, helper, pe->flags);
		if (fd < 0) {
			pr_perror("pidfd_open() of a helper for pidfd %u", rf->fe->id);
			ret = -errno;
			break;
		}
		rf->svc_fd = files_move_high(fd, fc->svc_fd_base);
		ret = rf->svc_fd < 0 ? rf->svc_fd : 0;
	}
	kill(helper, SIGKILL);
	if (waitpid(helper, &st, 0) != helper && !ret)
		ret = -ECHILD;
	return ret;
}

static int pidfd_prepare(struct files_rst_ctx *fc)
{
	struct files_rst *fr = fc->st;
	int ret = 0;

	for (int i = 0; !ret && i < fr->nr_files; i++) {
		struct rfile *rf = &fr->files[i];

		if (rf->fe->type != FD_TYPES__PIDFD)
			continue;
		if (rf->fe->pidfd->nspid != -1 && (rf->nr_tasks > 1 || rf->in_flight)) {
			pr_err("files.img: pidfd %u of pid %d is held by %d tasks: not supported\n",
			       rf->fe->id, rf->fe->pidfd->nspid, rf->nr_tasks);
			ret = -EINVAL;
		} else if (rf->fe->pidfd->nspid == -1 && rf->svc_fd < 0) {
			ret = make_dead(fc, rf->fe->pidfd->ino);
		}
	}
	return ret;
}

/* In the task that holds it: the target may still be being forked. */
static int pidfd_open_live(struct files_rst_ctx *fc, struct rfile *rf)
{
	const PidfdEntry *pe = rf->fe->pidfd;

	for (int i = 0; i < PIDFD_WAIT_TRIES; i++) {
		int fd = syscall(__NR_pidfd_open, pe->nspid, pe->flags);

		if (fd >= 0)
			return fd;
		if (errno != ESRCH)
			break;
		usleep(PIDFD_WAIT_US);
	}
	pr_perror("pidfd_open(%d) for pidfd %u", pe->nspid, rf->fe->id);
	return -errno;
}

static uint32_t pidfd_flags(struct files_rst *fr, const FileEntry *fe)
{
	return fe->pidfd->flags;
}

const struct files_type files_pidfd_type = {
	.type = FD_TYPES__PIDFD,
	.name = "pidfd",
	.match = pidfd_match,
	.dump = pidfd_dump,
	.check = pidfd_check,
	.prepare = pidfd_prepare,
	.open = pidfd_open_live,
	.flags = pidfd_flags,
	.one_task = pidfd_one_task,
};
