// SPDX-License-Identifier: MIT
/*
 * eventfds: the counter and EFD_SEMAPHORE from /proc/PID/fdinfo
 * (eventfd-count, eventfd-semaphore), O_NONBLOCK from f_flags. Restore:
 * a new eventfd, the counter written back.
 */
#define LOG_PREFIX "eventfd: "
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "eventfd.pb-c.h"
#include "fdinfo.pb-c.h"
#include "files/files_internal.h"

/* The kernel refuses to add UINT64_MAX: the counter is at most one less. */
#define EFD_COUNTER_MAX (UINT64_MAX - 1)

static bool eventfd_match(const struct fd_desc *d)
{
	return !strcmp(d->link, "anon_inode:[eventfd]");
}

static int parse_eventfd(const struct fd_desc *d, uint64_t *count, bool *sem)
{
	char name[64];
	cleanup_free char *buf = NULL;
	const char *c, *s;
	unsigned long long v;
	int semv;

	snprintf(name, sizeof(name), "fdinfo/%d", d->fd);
	buf = read_proc(d->pid, name, NULL);
	if (!buf)
		return -errno ? -errno : -EIO;
	c = files_fdinfo_field(buf, "eventfd-count:");
	s = files_fdinfo_field(buf, "eventfd-semaphore:");
	if (!c || !s || sscanf(c, "%llx", &v) != 1 || sscanf(s, "%d", &semv) != 1) {
		pr_err("fd %d of pid %d: fdinfo has no eventfd-count/eventfd-semaphore (kernel too old?)\n",
		       d->fd, d->pid);
		return -ENOTSUP;
	}
	*count = v;
	*sem = semv;
	return 0;
}

static int eventfd_dump(struct files_dump_ctx *fc, const struct fd_desc *d, uint32_t *id)
{
	EventfdFileEntry ee = EVENTFD_FILE_ENTRY__INIT;
	FownEntry fown;
	FileEntry fe = FILE_ENTRY__INIT;
	int fd = files_peekfd(d);
	uint64_t count;
	bool sem;
	int ret;

	if (fd < 0)
		return fd;
	ret = files_dump_fown(d, fd, &fown);
	if (!ret)
		ret = parse_eventfd(d, &count, &sem);
	if (ret)
		return ret;
	*id = files_new_id(fc);
	ee.id = *id;
	ee.flags = d->flags;
	ee.fown = &fown;
	ee.counter = count;
	ee.has_amber_semaphore = true;
	ee.amber_semaphore = sem;
	fe.type = FD_TYPES__EVENTFD;
	fe.id = *id;
	fe.efd = &ee;
	pr_debug("eventfd %u: counter %llu%s\n", *id, (unsigned long long)count,
		 sem ? ", semaphore" : "");
	return files_write_entry(fc, &fe);
}

static int eventfd_check(struct files_rst_ctx *fc, const FileEntry *fe)
{
	const EventfdFileEntry *e = fe->efd;
	int ret = files_check_sub(fe, e, e ? e->id : 0);

	if (!ret)
		ret = files_check_fown(fe, e->fown);
	if (!ret && e->counter > EFD_COUNTER_MAX) {
		pr_err("files.img: eventfd %u: counter %#llx is out of range\n", fe->id,
		       (unsigned long long)e->counter);
		ret = -EINVAL;
	}
	return ret;
}

static int eventfd_open(struct files_rst_ctx *fc, struct rfile *rf)
{
	const EventfdFileEntry *e = rf->fe->efd;
	int flags = EFD_CLOEXEC | EFD_NONBLOCK;
	int fd;

	if (e->has_amber_semaphore && e->amber_semaphore)
		flags |= EFD_SEMAPHORE;
	fd = eventfd(0, flags);
	if (fd < 0) {
		pr_perror("eventfd %u", e->id);
		return -errno;
	}
	/* Written, not given to eventfd(): its initial value is an int. */
	if (e->counter && write(fd, &e->counter, sizeof(e->counter)) != sizeof(e->counter)) {
		pr_perror("eventfd %u: can't set the counter to %llu", e->id,
			  (unsigned long long)e->counter);
		close(fd);
		return -EIO;
	}
	return fd;
}

static uint32_t eventfd_flags(struct files_rst *fr, const FileEntry *fe)
{
	return fe->efd->flags;
}

const struct files_type files_eventfd_type = {
	.type = FD_TYPES__EVENTFD,
	.name = "eventfd",
	.match = eventfd_match,
	.dump = eventfd_dump,
	.check = eventfd_check,
	.open = eventfd_open,
	.flags = eventfd_flags,
};
