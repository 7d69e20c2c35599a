// SPDX-License-Identifier: MIT
/*
 * Tracker selection and the page scan shared by both trackers: PAGEMAP_SCAN
 * where the kernel has it (regions, filtered in the kernel), else reading
 * /proc/PID/pagemap (soft-dirty only).
 */
#define LOG_PREFIX "track: "
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "base/kerndat.h"
#include "base/log.h"
#include "mem/track.h"
#include "mem/track_internal.h"
#include "base/uapi.h"
#include "base/util.h"

const char *track_kind_name(enum track_kind k)
{
	switch (k) {
	case TRACK_SOFT_DIRTY:
		return "soft-dirty";
	case TRACK_UFFD_WP:
		return "uffd-wp";
	default:
		return "none";
	}
}

int track_select(struct tracker *tr, const char *name, char *why, size_t why_len)
{
	struct kerndat kd;
	bool sd, wp;

	memset(tr, 0, sizeof(*tr));
	memset(&kd, 0, sizeof(kd));
	kerndat_probe_one(&kd, KD_SOFT_DIRTY);
	kerndat_probe_one(&kd, KD_UFFD);
	kerndat_probe_one(&kd, KD_PAGEMAP_SCAN);
	kerndat_probe_one(&kd, KD_PIDFD_GETFD);
	tr->pagemap_scan = kd.f[KD_PAGEMAP_SCAN].ok;
	sd = kd.f[KD_SOFT_DIRTY].ok;
	wp = kd.f[KD_UFFD_WP_ASYNC].ok && tr->pagemap_scan && kd.f[KD_PIDFD_GETFD].ok;

	if (!strcmp(name, "soft-dirty") || (!strcmp(name, "auto") && sd)) {
		if (!sd) {
			snprintf(why, why_len, "soft-dirty: %s", kd.f[KD_SOFT_DIRTY].detail);
			return -ENOTSUP;
		}
		tr->kind = TRACK_SOFT_DIRTY;
		snprintf(why, why_len, "soft-dirty works here (%s)", kd.f[KD_SOFT_DIRTY].detail);
		return 0;
	}
	if (!strcmp(name, "uffd-wp") || !strcmp(name, "auto")) {
		if (!wp) {
			snprintf(why, why_len,
				 "%suffd-wp needs userfaultfd WP_ASYNC (%s), PAGEMAP_SCAN (%s) and "
				 "pidfd_getfd (%s)",
				 strcmp(name, "auto") ? "" : "no soft-dirty here, and ",
				 kd.f[KD_UFFD_WP_ASYNC].detail, kd.f[KD_PAGEMAP_SCAN].detail,
				 kd.f[KD_PIDFD_GETFD].detail);
			return -ENOTSUP;
		}
		tr->kind = TRACK_UFFD_WP;
		snprintf(why, why_len, "%suserfaultfd WP_ASYNC + PAGEMAP_SCAN work here",
			 strcmp(name, "auto") ? "" : "no soft-dirty (CONFIG_MEM_SOFT_DIRTY), ");
		return 0;
	}
	snprintf(why, why_len, "unknown tracker '%s' (auto, soft-dirty, uffd-wp)", name);
	return -EINVAL;
}

#define SCAN_VEC 1024

/* Regions of wanted pages through PAGEMAP_SCAN; @wp_flags re-arm uffd-wp. */
static int scan_ioctl(int pagemap_fd, uint64_t start, uint64_t end, uint64_t wp_flags,
		      uint64_t written_cat, track_region_fn fn, void *arg)
{
	struct page_region vec[SCAN_VEC];
	struct pm_scan_arg a = {
		.size = sizeof(a),
		.flags = wp_flags,
		.vec = (uintptr_t)vec,
		.vec_len = SCAN_VEC,
		/* present or swapped, and neither a page-cache page nor the zero page */
		.category_anyof_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
		.category_inverted = PAGE_IS_FILE | PAGE_IS_PFNZERO,
		.category_mask = PAGE_IS_FILE | PAGE_IS_PFNZERO,
		.return_mask = written_cat | PAGE_IS_PRESENT,
	};

	/*
	 * walk_end can stop short of the regions already returned (seen on
	 * 6.18 with WP_MATCHING): scan again from there, so every page is
	 * re-protected, but report each page once, as first seen.
	 */
	uint64_t done = start;

	for (uint64_t at = start; at < end;) {
		long n;

		a.start = at;
		a.end = end;
		n = ioctl(pagemap_fd, PAGEMAP_SCAN, &a);
		if (n < 0) {
			pr_perror("PAGEMAP_SCAN %#llx-%#llx", (unsigned long long)at,
				  (unsigned long long)end);
			return -errno;
		}
		for (long i = 0; i < n; i++) {
			int ret;

			if (vec[i].end <= done)
				continue;
			ret = fn(arg, max(vec[i].start, done), vec[i].end,
				 !written_cat || (vec[i].categories & written_cat));
			if (ret)
				return ret;
			done = vec[i].end;
		}
		if (a.walk_end <= at) {
			pr_err("PAGEMAP_SCAN made no progress at %#llx\n", (unsigned long long)at);
			return -EIO;
		}
		at = a.walk_end;
	}
	return 0;
}

#define READ_PAGES 512

/* The same through /proc/PID/pagemap reads, for kernels before 6.7. */
static int scan_read(int pagemap_fd, uint64_t start, uint64_t end, uint64_t zero_pfn,
		     bool soft_dirty, track_region_fn fn, void *arg)
{
	uint64_t pmes[READ_PAGES], run_start = 0;
	bool run = false, run_written = false;
	int ret = 0;

	for (uint64_t at = start; at < end && !ret;) {
		size_t n = min((end - at) / PAGE_SIZE, (uint64_t)READ_PAGES);

		if (pread_full(pagemap_fd, pmes, n * 8, at / PAGE_SIZE * 8)) {
			pr_perror("can't read pagemap");
			return -EIO;
		}
		for (size_t i = 0; i < n && !ret; i++) {
			uint64_t a = at + i * PAGE_SIZE;
			bool want = pme_wanted(pmes[i], zero_pfn);
			bool w = !soft_dirty || (pmes[i] & PME_SOFT_DIRTY);

			if (run && (!want || w != run_written)) {
				ret = fn(arg, run_start, a, run_written);
				run = false;
			}
			if (want && !run) {
				run = true;
				run_start = a;
				run_written = w;
			}
		}
		at += n * PAGE_SIZE;
	}
	if (!ret && run)
		ret = fn(arg, run_start, end, run_written);
	return ret;
}

int track_scan_untracked(const struct tracker *tr, int pagemap_fd, uint64_t start,
			 uint64_t end, track_region_fn fn, void *arg)
{
	if (tr->pagemap_scan)
		return scan_ioctl(pagemap_fd, start, end, 0, 0, fn, arg);
	return scan_read(pagemap_fd, start, end, tr->zero_pfn, false, fn, arg);
}

int track_scan_vma(const struct tracker *tr, struct track_task *tt, int pagemap_fd,
		   uint64_t start, uint64_t end, bool writable_private, track_region_fn fn,
		   void *arg)
{
	switch (tr->kind) {
	case TRACK_UFFD_WP:
		/* Just armed (fresh): protect everything, report all as written. */
		if (writable_private && uffdwp_register(tt, start, end) == 0)
			return scan_ioctl(pagemap_fd, start, end,
					  PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC,
					  tt->fresh ? 0 : PAGE_IS_WRITTEN, fn, arg);
		/* Not trackable: every page counts as written. */
		return scan_ioctl(pagemap_fd, start, end, 0, 0, fn, arg);
	case TRACK_SOFT_DIRTY:
		if (tr->pagemap_scan)
			return scan_ioctl(pagemap_fd, start, end, 0,
					  tt->fresh ? 0 : PAGE_IS_SOFT_DIRTY, fn, arg);
		return scan_read(pagemap_fd, start, end, tr->zero_pfn, !tt->fresh, fn, arg);
	default:
		return scan_read(pagemap_fd, start, end, tr->zero_pfn, false, fn, arg);
	}
}

int track_task_rearm(const struct tracker *tr, struct track_task *tt)
{
	char path[64];
	cleanup_close int fd = -1;

	if (tr->kind != TRACK_SOFT_DIRTY)
		return 0; /* uffd-wp re-armed each page as it scanned it */
	snprintf(path, sizeof(path), "/proc/%d/clear_refs", tt->pid);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	/* set before: a failed write may have cleared some */
	tt->rearmed = true;
	if (fd < 0 || write(fd, "4", 1) != 1) {
		pr_perror("can't clear soft-dirty bits of %d", tt->pid);
		return -errno;
	}
	return 0;
}

int track_task_prepare(const struct tracker *tr, struct track_task *tt, pid_t pid, int prev_fd)
{
	memset(tt, 0, sizeof(*tt));
	tt->pid = pid;
	tt->uffd = tt->target_fd = -1;
	if (tr->kind == TRACK_UFFD_WP)
		return uffdwp_prepare(tt, prev_fd);
	/*
	 * soft-dirty: bits set since the last clear_refs. Without a parent
	 * image nothing was cleared for us: all written.
	 */
	tt->fresh = prev_fd == TRACK_NO_PARENT;
	return 0;
}

void track_task_put(struct track_task *tt)
{
	if (tt->uffd >= 0)
		close(tt->uffd);
	tt->uffd = -1;
}

int track_remove_from_target(pid_t pid)
{
	/* Only the uffd-wp tracker leaves something in the task. */
	return uffdwp_remove(pid);
}

int track_task_undo(const struct track_task *tt)
{
	/* A tracker picked up from the parent image stays: the chain goes on. */
	if (!tt->fresh || tt->target_fd < 0)
		return 0;
	return uffdwp_remove(tt->pid);
}
