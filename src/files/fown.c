// SPDX-License-Identifier: MIT
/*
 * The owner of an open file description (F_SETOWN, F_SETOWN_EX) and its
 * signal (F_SETSIG), as CRIU keeps them in a fown_entry: the owner's pid
 * and kind (F_OWNER_TID 0, F_OWNER_PID 1, F_OWNER_PGRP 2), the uid and
 * euid of whoever set it (F_GETOWNER_UIDS: they decide who may be
 * signalled) and the signal number.
 *
 * Every type's sub-message of file_entry has a fown field: it is found by
 * name (protobuf-c reflection), so this file serves every type without
 * each one knowing. Dump: files.c names the fd whose description is being
 * written (files_dump.cur); files_write_entry() fills the fown of its
 * entry and refuses an owner outside the tree, or a thread other than a
 * leader (threads are created after the fds at restore). Restore: the
 * owner is checked at load against the tree's tasks, and set again by
 * each task holding the fd, once the owner exists (it may still be being
 * forked), with the saved uid and euid as CRIU does.
 */
#define LOG_PREFIX "files: "
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/log.h"
#include "base/uapi.h"
#include "base/util.h"
#include "files/files_internal.h"

#ifndef F_GETOWNER_UIDS
#define F_GETOWNER_UIDS 17 /* CONFIG_CHECKPOINT_RESTORE */
#endif
#define FOWN_WAIT_US	1000
#define FOWN_WAIT_TRIES 20000 /* 20 s for the owner to be forked */
#define FOWN_MAX_SIG	64

static const char *const owner_kind[] = { "thread", "process", "process group" };

/* The fown_entry of @fe's sub-message, or NULL (no sub-message, no fown). */
static FownEntry **fown_slot(const FileEntry *fe)
{
	const ProtobufCMessageDescriptor *d = fe->base.descriptor;

	for (unsigned int i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i], *ff;
		ProtobufCMessage *sub;

		if (f->type != PROTOBUF_C_TYPE_MESSAGE || f->label == PROTOBUF_C_LABEL_REPEATED)
			continue;
		sub = *(ProtobufCMessage **)((char *)fe + f->offset);
		if (!sub)
			continue;
		ff = protobuf_c_message_descriptor_get_field_by_name(sub->descriptor, "fown");
		if (ff && ff->type == PROTOBUF_C_TYPE_MESSAGE && ff->descriptor == &fown_entry__descriptor)
			return (FownEntry **)((char *)sub + ff->offset);
	}
	return NULL;
}

/* ---- dump ---- */

/* Fills @fown for @fd (amber's copy of the task's fd @d). */
int files_dump_fown(const struct fd_desc *d, int fd, FownEntry *fown)
{
	struct f_owner_ex own = {};
	uint32_t uids[2] = { 0, 0 };
	int sig = fcntl(fd, F_GETSIG);

	if (fcntl(fd, F_GETOWN_EX, &own) || sig < 0) {
		pr_perror("fd %d of pid %d: can't read the file owner", d->fd, d->pid);
		return -errno;
	}
	*fown = (FownEntry)FOWN_ENTRY__INIT;
	if (own.pid && fcntl(fd, F_GETOWNER_UIDS, uids)) {
		pr_perror("fd %d of pid %d: can't read the file owner's uids", d->fd, d->pid);
		return -errno;
	}
	/* The owner as the tree sees it; one outside its pid namespace can't be had again. */
	fown->pid = fd_ns_pid(d, own.pid);
	if (own.pid && !fown->pid) {
		pr_err("fd %d of pid %d: its owner %d is outside the tree's pid namespace: not "
		       "supported\n", d->fd, d->pid, own.pid);
		return -ENOTSUP;
	}
	fown->pid_type = own.type;
	fown->signum = sig;
	fown->uid = uids[0];
	fown->euid = uids[1];
	return 0;
}

static bool in_tree(const struct files_dump_ctx *fc, pid_t pid)
{
	for (int i = 0; i < fc->nr_tree_pids; i++)
		if (fc->tree_pids[i] == pid)
			return true;
	return false;
}

/* An owner the restored tree can have again? */
static int check_owner(const struct files_dump_ctx *fc, const struct fd_desc *d,
		       const FileEntry *fe, const FownEntry *fown)
{
	char what[PATH_MAX + 64];

	/* fown->pid is the tree's pid, tree_pids are amber's */
	if (!fown->pid || in_tree(fc, fc->pids ? pid_map_host(fc->pids, fown->pid) : (pid_t)fown->pid))
		return 0;
	if (d)
		snprintf(what, sizeof(what), "fd %d of pid %d (%s)", d->fd, d->pid, d->link);
	else
		snprintf(what, sizeof(what), "file %u (type %d)", fe->id, fe->type);
	pr_err("%s: its owner (F_SETOWN %s %d) is %s\n", what,
	       fown->pid_type < ARRAY_SIZE(owner_kind) ? owner_kind[fown->pid_type] : "?",
	       fown->pid,
	       fown->pid_type == F_OWNER_TID ? "a thread other than a leader, or outside the "
					       "dumped tree: not supported" :
					       "outside the dumped tree: not supported");
	return -ENOTSUP;
}

int files_fill_fown(struct files_dump_ctx *fc, const FileEntry *fe)
{
	const struct fd_desc *d = fc->st->cur_used ? NULL : fc->st->cur;
	FownEntry **slot = fown_slot(fe);
	int ret;

	if (!slot || !*slot)
		return 0;
	/* The first entry written while a task's fd is dumped is that fd's. */
	fc->st->cur_used = fc->st->cur != NULL;
	/* (an O_PATH fd has no owner: fcntl() refuses it) */
	if (d && !(d->flags & O_PATH) && !(*slot)->pid && !(*slot)->signum) {
		int fd = files_peekfd(d);

		if (fd < 0)
			return fd;
		ret = files_dump_fown(d, fd, *slot);
		if (ret)
			return ret;
	}
	return check_owner(fc, d, fe, *slot);
}

/* ---- restore ---- */

static bool is_task(const struct files_rst *fr, pid_t pid)
{
	for (int i = 0; i < fr->nr_tasks; i++)
		if (fr->tasks[i].pid == pid)
			return true;
	return false;
}

/* An image's fown_entry: present (CRIU requires it) and its own type's. */
int files_check_fown(const FileEntry *fe, const FownEntry *fown)
{
	if (fown)
		return 0;
	pr_err("files.img: file %u (type %d) has no fown_entry\n", fe->id, fe->type);
	return -EINVAL;
}

/* Any entry's owner: a task of the tree, of a known kind, a real signal. */
int files_check_owner(struct files_rst_ctx *fc, const FileEntry *fe)
{
	FownEntry **slot = fown_slot(fe);
	const FownEntry *o = slot ? *slot : NULL;

	if (!o || (!o->pid && !o->signum))
		return 0;
	if (o->signum > FOWN_MAX_SIG || o->pid_type > F_OWNER_PGRP || (int32_t)o->pid < 0 ||
	    (o->pid && !is_task(fc->st, o->pid))) {
		pr_err("files.img: file %u (type %d) has the owner %u (kind %u, signal %u), "
		       "which is not a task of the tree or not an owner\n", fe->id, fe->type,
		       o->pid, o->pid_type, o->signum);
		return -EINVAL;
	}
	return 0;
}

/* F_SETOWN_EX as the uid and euid that set it; the owner may not exist yet. */
static int set_owner(int fd, const FownEntry *o)
{
	struct f_owner_ex own = { .type = o->pid_type, .pid = o->pid };
	uid_t r, e, s;
	int ret = -ESRCH;

	if (getresuid(&r, &e, &s) || setresuid(o->uid, o->euid, s))
		return -errno;
	for (int i = 0; i < FOWN_WAIT_TRIES && ret == -ESRCH; i++) {
		ret = fcntl(fd, F_SETOWN_EX, &own) ? -errno : 0;
		if (ret == -ESRCH)
			usleep(FOWN_WAIT_US);
	}
	if (setresuid(r, e, s) && !ret)
		ret = -errno;
	prctl(PR_SET_DUMPABLE, 1); /* a change of uids cleared it; the restorer sets its own */
	return ret;
}

int files_restore_fown(int fd, const FileEntry *fe)
{
	FownEntry **slot = fown_slot(fe);
	const FownEntry *o = slot ? *slot : NULL;
	int ret;

	if (!o || (!o->pid && !o->signum))
		return 0;
	if (o->signum && fcntl(fd, F_SETSIG, o->signum)) {
		pr_perror("fd %d: can't set the signal %u (F_SETSIG)", fd, o->signum);
		return -errno;
	}
	if (!o->pid)
		return 0;
	ret = set_owner(fd, o);
	if (ret)
		pr_err("fd %d: can't set its owner %s %u: %s\n", fd, owner_kind[o->pid_type], o->pid,
		       strerror(-ret));
	return ret;
}

/* The value after @key in /proc/PID/fdinfo text @buf, or NULL. */
const char *files_fdinfo_field(const char *buf, const char *key)
{
	size_t n = strlen(key);

	for (const char *p = buf; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (!strncmp(p, key, n))
			return p + n;
	return NULL;
}
