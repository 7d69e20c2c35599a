// SPDX-License-Identifier: MIT
/*
 * signalfds: the set of signals read through it (sigmask in
 * /proc/PID/fdinfo, bit N-1 for signal N) and O_NONBLOCK. The signals
 * themselves are pending on the task and restored with it.
 */
#define LOG_PREFIX "signalfd: "
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "fdinfo.pb-c.h"
#include "files/files_internal.h"
#include "signalfd.pb-c.h"

static bool signalfd_match(const struct fd_desc *d)
{
	return !strcmp(d->link, "anon_inode:[signalfd]");
}

static int parse_sigmask(const struct fd_desc *d, uint64_t *mask)
{
	char name[64];
	cleanup_free char *buf = NULL;
	const char *m;
	unsigned long long v;

	snprintf(name, sizeof(name), "fdinfo/%d", d->fd);
	buf = read_proc(d->pid, name, NULL);
	if (!buf)
		return -errno ? -errno : -EIO;
	m = files_fdinfo_field(buf, "sigmask:");
	if (!m || sscanf(m, "%llx", &v) != 1) {
		pr_err("fd %d of pid %d: fdinfo has no sigmask\n", d->fd, d->pid);
		return -EIO;
	}
	*mask = v;
	return 0;
}

static int signalfd_dump(struct files_dump_ctx *fc, const struct fd_desc *d, uint32_t *id)
{
	SignalfdEntry se = SIGNALFD_ENTRY__INIT;
	FownEntry fown;
	FileEntry fe = FILE_ENTRY__INIT;
	int fd = files_peekfd(d);
	uint64_t mask;
	int ret;

	if (fd < 0)
		return fd;
	ret = files_dump_fown(d, fd, &fown);
	if (!ret)
		ret = parse_sigmask(d, &mask);
	if (ret)
		return ret;
	*id = files_new_id(fc);
	se.id = *id;
	se.flags = d->flags;
	se.fown = &fown;
	se.sigmask = mask;
	fe.type = FD_TYPES__SIGNALFD;
	fe.id = *id;
	fe.sgfd = &se;
	pr_debug("signalfd %u: mask %#llx\n", *id, (unsigned long long)mask);
	return files_write_entry(fc, &fe);
}

static int signalfd_check(struct files_rst_ctx *fc, const FileEntry *fe)
{
	const SignalfdEntry *s = fe->sgfd;
	int ret = files_check_sub(fe, s, s ? s->id : 0);

	return ret ? ret : files_check_fown(fe, s->fown);
}

static int signalfd_open(struct files_rst_ctx *fc, struct rfile *rf)
{
	const SignalfdEntry *s = rf->fe->sgfd;
	sigset_t set;
	int fd;

	/* The kernel's 64-bit mask is the start of sigset_t (glibc's sigaddset refuses 32, 33). */
	sigemptyset(&set);
	memcpy(&set, &s->sigmask, sizeof(s->sigmask));
	fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (fd < 0) {
		pr_perror("signalfd %u (mask %#llx)", s->id, (unsigned long long)s->sigmask);
		return -errno;
	}
	return fd;
}

static uint32_t signalfd_flags(struct files_rst *fr, const FileEntry *fe)
{
	return fe->sgfd->flags;
}

const struct files_type files_signalfd_type = {
	.type = FD_TYPES__SIGNALFD,
	.name = "signalfd",
	.match = signalfd_match,
	.dump = signalfd_dump,
	.check = signalfd_check,
	.open = signalfd_open,
	.flags = signalfd_flags,
};
