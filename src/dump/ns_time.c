// SPDX-License-Identifier: MIT
/* The tree's own time namespace: its clocks at the dump (ns.h). */
#define LOG_PREFIX "ns: "
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "base/log.h"
#include "base/proc.h"
#include "dump/dump.h"
#include "dump/ns.h"
#include "image/image.h"
#include "timens.pb-c.h"

#define NSEC_PER_SEC 1000000000LL

static int64_t ts_ns(const struct timespec *ts)
{
	return ts->tv_sec * NSEC_PER_SEC + ts->tv_nsec;
}

/*
 * One clock as the tree reads it: amber's reading moved by the difference
 * of the two namespaces' offsets (both are relative to the host's clock).
 * amber's thread can't enter the namespace to read it (setns of a time
 * namespace wants a single-threaded caller); the offsets are exact.
 */
static int tree_clock(clockid_t clk, const struct timespec *theirs, const struct timespec *mine,
		      Timespec *out)
{
	struct timespec now;
	int64_t ns;

	if (clock_gettime(clk, &now))
		return -errno;
	ns = ts_ns(&now) + ts_ns(theirs) - ts_ns(mine);
	if (ns < 0)
		return -ERANGE; /* the kernel keeps every clock of a namespace >= 0 */
	out->tv_sec = ns / NSEC_PER_SEC;
	out->tv_nsec = ns % NSEC_PER_SEC;
	return 0;
}

int dump_ns_time(struct dump_ctx *dc, pid_t root)
{
	TimensEntry te = TIMENS_ENTRY__INIT;
	Timespec mono = TIMESPEC__INIT, boot = TIMESPEC__INIT;
	struct proc_timens_offsets theirs, mine;
	int ret = proc_parse_timens_offsets(root, &theirs);

	/* unsupported.c checked that the root's children get its own namespace. */
	if (!ret)
		ret = proc_parse_timens_offsets(0, &mine);
	if (ret) {
		pr_err("can't read the time namespace offsets of %d and amber: %s\n", root,
		       strerror(-ret));
		return ret;
	}
	ret = tree_clock(CLOCK_MONOTONIC, &theirs.monotonic, &mine.monotonic, &mono);
	if (!ret)
		ret = tree_clock(CLOCK_BOOTTIME, &theirs.boottime, &mine.boottime, &boot);
	if (ret) {
		pr_err("can't read the clocks of the time namespace of %d: %s\n", root,
		       strerror(-ret));
		return ret;
	}
	te.monotonic = &mono;
	te.boottime = &boot;
	dc->ns.time_ns_id = dump_new_id(dc);
	dc->ns.amber_time_ns_id = dump_new_id(dc);
	pr_info("time namespace of %d (offsets monotonic %lld.%09ld, boottime %lld.%09ld): "
		"its clocks %" PRIu64 ".%09" PRIu64 " and %" PRIu64 ".%09" PRIu64
		", timens-%u.img\n", root, (long long)theirs.monotonic.tv_sec,
		theirs.monotonic.tv_nsec, (long long)theirs.boottime.tv_sec,
		theirs.boottime.tv_nsec, mono.tv_sec, mono.tv_nsec, boot.tv_sec, boot.tv_nsec,
		dc->ns.time_ns_id);
	return img_write_one(dc->dirfd, IMG_TIMENS, dc->ns.time_ns_id, &te.base);
}
