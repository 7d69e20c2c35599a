// SPDX-License-Identifier: MIT
/*
 * timerfds: clock, interval, the time left until the next expiration
 * (relative, as /proc/PID/fdinfo shows it), expirations not yet read
 * (ticks) and the settime flags.
 *
 * Dump: timerfd_gettime() on the task's timer first: for a periodic timer
 * that expired and was not read yet it accounts the missed periods into
 * ticks and re-arms the timer (what the task's next read or gettime would
 * do anyway), so fdinfo then shows the true next expiration.
 * Restore: timerfd_settime() with the time left from now (made absolute
 * again for TFD_TIMER_ABSTIME, which TFD_TIMER_CANCEL_ON_SET needs), then
 * the unread ticks with TFD_IOC_SET_TICKS, as CRIU does.
 */
#define LOG_PREFIX "timerfd: "
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "fdinfo.pb-c.h"
#include "files/files_internal.h"
#include "timerfd.pb-c.h"

#ifndef TFD_IOC_SET_TICKS
#define TFD_IOC_SET_TICKS _IOW('T', 0, uint64_t)
#endif
#define NSEC_PER_SEC 1000000000ULL
/* The kernel keeps times as signed 64-bit nanoseconds. */
#define TIMER_SEC_MAX (INT64_MAX / NSEC_PER_SEC)

static bool timerfd_match(const struct fd_desc *d)
{
	return !strcmp(d->link, "anon_inode:[timerfd]");
}

static int parse_timerfd(const struct fd_desc *d, TimerfdEntry *te)
{
	char name[64];
	cleanup_free char *buf = NULL;
	const char *c, *t, *f, *v, *i;
	unsigned long long ticks, vs, vn, is, in;
	unsigned int clk, flags;

	snprintf(name, sizeof(name), "fdinfo/%d", d->fd);
	buf = read_proc(d->pid, name, NULL);
	if (!buf)
		return -errno ? -errno : -EIO;
	c = files_fdinfo_field(buf, "clockid:");
	t = files_fdinfo_field(buf, "ticks:");
	f = files_fdinfo_field(buf, "settime flags:");
	v = files_fdinfo_field(buf, "it_value:");
	i = files_fdinfo_field(buf, "it_interval:");
	if (!c || !t || !f || !v || !i || sscanf(c, "%u", &clk) != 1 ||
	    sscanf(t, "%llu", &ticks) != 1 || sscanf(f, "%o", &flags) != 1 ||
	    sscanf(v, " (%llu, %llu)", &vs, &vn) != 2 || sscanf(i, " (%llu, %llu)", &is, &in) != 2) {
		pr_err("fd %d of pid %d: can't parse the timerfd's fdinfo\n", d->fd, d->pid);
		return -EIO;
	}
	te->clockid = clk;
	te->ticks = ticks;
	te->settime_flags = flags;
	te->vsec = vs;
	te->vnsec = vn;
	te->isec = is;
	te->insec = in;
	return 0;
}

static int timerfd_dump(struct files_dump_ctx *fc, const struct fd_desc *d, uint32_t *id)
{
	TimerfdEntry te = TIMERFD_ENTRY__INIT;
	FownEntry fown;
	FileEntry fe = FILE_ENTRY__INIT;
	int fd = files_peekfd(d);
	struct itimerspec its;
	int ret;

	if (fd < 0)
		return fd;
	if (timerfd_gettime(fd, &its)) {
		pr_perror("fd %d of pid %d: timerfd_gettime", d->fd, d->pid);
		return -errno;
	}
	ret = files_dump_fown(d, fd, &fown);
	if (!ret)
		ret = parse_timerfd(d, &te);
	if (ret)
		return ret;
	*id = files_new_id(fc);
	te.id = *id;
	te.flags = d->flags;
	te.fown = &fown;
	fe.type = FD_TYPES__TIMERFD;
	fe.id = *id;
	fe.tfd = &te;
	pr_debug("timerfd %u: clock %u ticks %llu left %llu.%09llu interval %llu.%09llu flags %#x\n",
		 *id, te.clockid, (unsigned long long)te.ticks, (unsigned long long)te.vsec,
		 (unsigned long long)te.vnsec, (unsigned long long)te.isec,
		 (unsigned long long)te.insec, te.settime_flags);
	return files_write_entry(fc, &fe);
}

static bool clock_ok(uint32_t clk)
{
	return clk == CLOCK_REALTIME || clk == CLOCK_MONOTONIC || clk == CLOCK_BOOTTIME ||
	       clk == CLOCK_REALTIME_ALARM || clk == CLOCK_BOOTTIME_ALARM;
}

static bool time_ok(uint64_t sec, uint64_t nsec)
{
	return sec <= TIMER_SEC_MAX && nsec < NSEC_PER_SEC;
}

static int timerfd_check(struct files_rst_ctx *fc, const FileEntry *fe)
{
	const TimerfdEntry *t = fe->tfd;
	int ret = files_check_sub(fe, t, t ? t->id : 0);

	if (!ret)
		ret = files_check_fown(fe, t->fown);
	if (ret)
		return ret;
	if (!clock_ok(t->clockid)) {
		pr_err("files.img: timerfd %u: unknown clock %u\n", fe->id, t->clockid);
		return -EINVAL;
	}
	if (!time_ok(t->vsec, t->vnsec) || !time_ok(t->isec, t->insec)) {
		pr_err("files.img: timerfd %u: time out of range (value %llu s %llu ns, interval %llu s %llu ns)\n",
		       fe->id, (unsigned long long)t->vsec, (unsigned long long)t->vnsec,
		       (unsigned long long)t->isec, (unsigned long long)t->insec);
		return -EINVAL;
	}
	if (t->settime_flags & ~(uint32_t)(TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET)) {
		pr_err("files.img: timerfd %u: unknown settime flags %#x\n", fe->id,
		       t->settime_flags);
		return -EINVAL;
	}
	return 0;
}

/* The saved time left, from now; absolute on the timer's clock if it was set so. */
static int timer_value(const TimerfdEntry *t, struct itimerspec *its)
{
	struct timespec now;

	*its = (struct itimerspec){ .it_value = { t->vsec, t->vnsec },
				    .it_interval = { t->isec, t->insec } };
	/* A periodic timer due right now: 0 would disarm it. */
	if (!t->vsec && !t->vnsec && (t->isec || t->insec))
		its->it_value.tv_nsec = 1;
	if (!(t->settime_flags & TFD_TIMER_ABSTIME) || (!t->vsec && !t->vnsec && !t->isec && !t->insec))
		return 0;
	if (clock_gettime(t->clockid, &now)) {
		pr_perror("timerfd %u: clock_gettime(%u)", t->id, t->clockid);
		return -errno;
	}
	its->it_value.tv_sec += now.tv_sec;
	its->it_value.tv_nsec += now.tv_nsec;
	if (its->it_value.tv_nsec >= (long)NSEC_PER_SEC) {
		its->it_value.tv_sec++;
		its->it_value.tv_nsec -= NSEC_PER_SEC;
	}
	return 0;
}

static int timerfd_open(struct files_rst_ctx *fc, struct rfile *rf)
{
	const TimerfdEntry *t = rf->fe->tfd;
	struct itimerspec its;
	int fd, ret;

	fd = timerfd_create(t->clockid, TFD_CLOEXEC | TFD_NONBLOCK);
	if (fd < 0) {
		pr_perror("timerfd %u: timerfd_create(%u)", t->id, t->clockid);
		return -errno;
	}
	ret = timer_value(t, &its);
	if (!ret && timerfd_settime(fd, t->settime_flags, &its, NULL)) {
		pr_perror("timerfd %u: timerfd_settime", t->id);
		ret = -errno;
	}
	if (!ret && t->ticks && ioctl(fd, TFD_IOC_SET_TICKS, &t->ticks)) {
		pr_perror("timerfd %u: can't set %llu unread expirations (TFD_IOC_SET_TICKS needs CONFIG_CHECKPOINT_RESTORE)",
			  t->id, (unsigned long long)t->ticks);
		ret = -errno;
	}
	if (ret) {
		close(fd);
		return ret;
	}
	return fd;
}

static uint32_t timerfd_flags(struct files_rst *fr, const FileEntry *fe)
{
	return fe->tfd->flags;
}

const struct files_type files_timerfd_type = {
	.type = FD_TYPES__TIMERFD,
	.name = "timerfd",
	.match = timerfd_match,
	.dump = timerfd_dump,
	.check = timerfd_check,
	.open = timerfd_open,
	.flags = timerfd_flags,
};
