// SPDX-License-Identifier: MIT
/* The tree's own time namespace, made again by the restored root (ns.h). */
#define LOG_PREFIX "ns: "
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "base/proc.h"
#include "base/util.h"
#include "image/image.h"
#include "restore/ns.h"
#include "restore/restore.h"
#include "timens.pb-c.h"

#define NSEC_PER_SEC 1000000000LL
/*
 * The kernel takes an offset only if the clock it gives stays within
 * [0, KTIME_SEC_MAX / 2] seconds (KTIME_SEC_MAX: INT64_MAX ns in seconds);
 * the clock a restored namespace gives is the saved one.
 */
#define TIMENS_SEC_MAX (INT64_MAX / NSEC_PER_SEC / 2)

static bool timespec_valid(const Timespec *ts)
{
	return ts->tv_sec <= TIMENS_SEC_MAX && ts->tv_nsec < NSEC_PER_SEC;
}

int rst_ns_load_time(struct rst_ctx *rc, uint32_t id)
{
	TimensEntry *te;
	int ret = img_read_one(rc->dirfd, IMG_TIMENS, id, &timens_entry__descriptor,
			       (ProtobufCMessage **)&te);

	if (ret) {
		pr_err("timens-%u.img (named by core-%d.img) can't be read\n", id,
		       rc->tasks[0].pid);
		return ret;
	}
	rc->ns.time = te;
	if (!timespec_valid(te->monotonic) || !timespec_valid(te->boottime)) {
		pr_err("timens-%u.img: a clock the kernel can't give (monotonic %" PRIu64
		       ".%09" PRIu64 ", boottime %" PRIu64 ".%09" PRIu64 "; at most %lld s, "
		       "nanoseconds below 1e9)\n", id, te->monotonic->tv_sec,
		       te->monotonic->tv_nsec, te->boottime->tv_sec, te->boottime->tv_nsec,
		       (long long)TIMENS_SEC_MAX);
		return -EINVAL;
	}
	pr_info("the tree's own time namespace (%u): its clocks go on from monotonic %" PRIu64
		".%09" PRIu64 ", boottime %" PRIu64 ".%09" PRIu64 "\n", id, te->monotonic->tv_sec,
		te->monotonic->tv_nsec, te->boottime->tv_sec, te->boottime->tv_nsec);
	return 0;
}

static int64_t ts_ns(const struct timespec *ts)
{
	return ts->tv_sec * NSEC_PER_SEC + ts->tv_nsec;
}

/*
 * The offset that makes @clk read @saved now: the saved reading less the
 * host's clock (the caller's reading less its namespace's offset @cur).
 * The time the tree spent dumped does not pass for it, as CRIU does.
 */
static int offset_for(clockid_t clk, const Timespec *saved, const struct timespec *cur,
		      int64_t *sec, int64_t *nsec)
{
	struct timespec now;
	int64_t off;

	if (clock_gettime(clk, &now))
		return -errno;
	off = (int64_t)saved->tv_sec * NSEC_PER_SEC + (int64_t)saved->tv_nsec -
	      (ts_ns(&now) - ts_ns(cur));
	/* seconds rounded down: the kernel wants 0 <= nsec < 1e9 */
	*sec = off / NSEC_PER_SEC;
	*nsec = off % NSEC_PER_SEC;
	if (*nsec < 0) {
		*nsec += NSEC_PER_SEC;
		*sec -= 1;
	}
	return 0;
}

/*
 * In the restored root, single-threaded, before its children: a new time
 * namespace, its offsets written while no task is in it yet (the kernel
 * fixes them when the first one enters), then the root enters it; its
 * children are born there.
 */
int rst_ns_enter_time(struct rst_ctx *rc)
{
	const TimensEntry *te = rc->ns.time;
	struct proc_timens_offsets cur;
	int64_t msec, mnsec, bsec, bnsec;
	char buf[128];
	int fd, n, ret;

	if (unshare(CLONE_NEWTIME))
		return -errno;
	/* A new namespace starts with its parent's offsets: the caller's. */
	ret = proc_parse_timens_offsets(0, &cur);
	if (!ret)
		ret = offset_for(CLOCK_MONOTONIC, te->monotonic, &cur.monotonic, &msec, &mnsec);
	if (!ret)
		ret = offset_for(CLOCK_BOOTTIME, te->boottime, &cur.boottime, &bsec, &bnsec);
	if (ret)
		return ret;
	n = snprintf(buf, sizeof(buf), "%d %" PRId64 " %" PRId64 "\n%d %" PRId64 " %" PRId64 "\n",
		     CLOCK_MONOTONIC, msec, mnsec, CLOCK_BOOTTIME, bsec, bnsec);
	fd = open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ret = write_full(fd, buf, n);
	close(fd);
	if (ret)
		return ret;
	fd = open("/proc/self/ns/time_for_children", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ret = setns(fd, CLONE_NEWTIME) ? -errno : 0;
	close(fd);
	return ret;
}
