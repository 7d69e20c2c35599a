// SPDX-License-Identifier: MIT
/*
 * CRIU's stats-dump and stats-restore in the request's work directory:
 * runc and podman read them back (podman --print-stats, and its
 * checkpoint archive carries stats-dump). What amber does not measure is 0.
 */
#define LOG_PREFIX "rpc: "
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "amber.h"
#include "base/log.h"
#include "image/image.h"
#include "rpc/rpc.h"
#include "stats.pb-c.h"

static int write_stats(const char *work_dir, enum img_type type, StatsEntry *se)
{
	int dirfd = open(work_dir, O_DIRECTORY | O_PATH | O_CLOEXEC);
	int ret;

	if (dirfd < 0) {
		pr_perror("can't open the work directory %s", work_dir);
		return -errno;
	}
	ret = img_write_one(dirfd, type, 0, &se->base);
	close(dirfd);
	if (ret)
		pr_warn("can't write %s in %s: %d\n", img_type_name(type), work_dir, ret);
	return ret;
}

int rpc_write_dump_stats(const char *work_dir, const struct amber_dump_stats *st)
{
	DumpStatsEntry d = DUMP_STATS_ENTRY__INIT;
	StatsEntry se = STATS_ENTRY__INIT;

	d.freezing_time = st->freezing_us;
	d.frozen_time = st->frozen_us;
	/* amber writes each page as it reads it: one span for both. */
	d.memdump_time = st->memdump_us;
	d.memwrite_time = 0;
	d.pages_scanned = st->pages_written + st->pages_skipped_parent;
	d.pages_skipped_parent = st->pages_skipped_parent;
	d.pages_written = st->pages_written;
	d.pages_lazy = 0;
	se.dump = &d;
	return write_stats(work_dir, IMG_STATS_DUMP, &se);
}

int rpc_write_restore_stats(const char *work_dir, uint32_t restore_us)
{
	RestoreStatsEntry r = RESTORE_STATS_ENTRY__INIT;
	StatsEntry se = STATS_ENTRY__INIT;

	r.restore_time = restore_us;
	se.restore = &r;
	return write_stats(work_dir, IMG_STATS_RESTORE, &se);
}
