// SPDX-License-Identifier: MIT
/*
 * amber pre-dump: the memory of a running tree, leaving it running. The
 * tree is frozen while each task's written pages are found, the tracker
 * re-armed and (splice mode, the default, as CRIU's) the pages copied out
 * (about 0.5 s per GiB here); it runs again while they are written. With
 * --pre-dump-mode=read it is frozen only for the scan: the pages are read
 * out of the running tasks afterwards.
 *
 * Why reading a running task is right: the tracker was re-armed at the
 * scan, so a page written after it, before or after we read it, is saved
 * again by the next dump, and mremap marks what it moves as written. The
 * only pages the chain ever takes from this image are those unwritten
 * since the scan, whose bytes we read are the bytes of the scan. A page
 * gone by the time we read it (unmapped) is saved as zeros: it is not
 * unwritten-and-present at the next dump either, nor is anything of a
 * task that exits while we read (checked with a pidfd, and logged).
 *
 * The images (pagemap, pages, and the VMA list in mm-PID.img that the next
 * dump compares with) are the parent of the next pre-dump or dump.
 */
#define LOG_PREFIX "pre-dump: "
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "mem/dedup.h"
#include "dump/dump.h"
#include "dump/memory.h"
#include "image/image.h"
#include "image/sums.h"
#include "base/log.h"
#include "mem/inc.h"
#include "base/proc.h"
#include "mem/vma.h"
#include "mem/xfer.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

struct predump_task {
	MmEntry mm;
	VmaEntry *vma_store;
	struct inc_plan plan;
	int pidfd; /* read mode: is it still the task we froze? -1 */
};

/* The VMA list as the next dump will compare it (no file ids needed). */
static int collect_vmas(pid_t pid, struct predump_task *pt)
{
	struct proc_vma *pvs = NULL;
	int nr = proc_parse_smaps(pid, &pvs);

	if (nr < 0)
		return nr;
	pt->vma_store = calloc(nr + 1, sizeof(VmaEntry));
	pt->mm.vmas = calloc(nr + 1, sizeof(VmaEntry *));
	if (!pt->vma_store || !pt->mm.vmas) {
		proc_vmas_free(pvs, nr);
		return -ENOMEM;
	}
	for (int i = 0; i < nr; i++) {
		const struct proc_vma *pv = &pvs[i];
		const char *p = pv->path;
		VmaEntry *v = &pt->vma_store[pt->mm.n_vmas];

		if (p && (!strcmp(p, "[vsyscall]") || !strcmp(p, "[vdso]") ||
			  !strncmp(p, "[vvar", 5)))
			continue;
		if (pv->vmflags & (VMF_IO | VMF_PFNMAP))
			continue; /* the dump refuses it with a message */
		vma_entry__init(v);
		v->start = pv->start;
		v->end = pv->end;
		v->pgoff = pv->pgoff;
		v->prot = pv->prot;
		v->fd = -1;
		v->flags = pv->shared ? MAP_SHARED : MAP_PRIVATE;
		if (!p || p[0] == '[')
			v->status = VMA_AREA_REGULAR | (pv->shared ? VMA_ANON_SHARED : VMA_ANON_PRIVATE);
		else if (!strcmp(p, "/dev/zero (deleted)") || !strncmp(p, "/SYSV", 5))
			v->status = VMA_AREA_REGULAR | VMA_ANON_SHARED;
		else
			v->status = VMA_AREA_REGULAR | (pv->shared ? VMA_FILE_SHARED :
								     VMA_FILE_PRIVATE);
		pt->mm.vmas[pt->mm.n_vmas++] = v;
	}
	proc_vmas_free(pvs, nr);
	return 0;
}

/* While frozen: find the written pages, re-arm the tracker, copy them. */
static int predump_task(struct dump_ctx *dc, struct dump_task *t, struct predump_task *pt)
{
	struct inc_parent parent;
	char path[64];
	cleanup_close int pagemap_fd = -1;
	int ret;

	mm_entry__init(&pt->mm);
	ret = inc_parent_load(dc->parent_dirfd, t->vpid, &parent);
	if (ret)
		return ret;
	ret = track_task_prepare(dc->tracker, &t->track, t->pid, inc_parent_track_fd(&parent));
	if (!ret)
		ret = collect_vmas(t->pid, pt);
	snprintf(path, sizeof(path), "/proc/%d/pagemap", t->pid);
	if (!ret && (pagemap_fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		pr_perror("can't open %s", path);
		ret = -errno;
	}
	if (!ret)
		ret = inc_parent_check_target(&parent, t->vpid, dc->xt);
	if (!ret)
		ret = inc_plan_build(&pt->plan, dc->tracker, &t->track, &parent, pt->mm.vmas,
				     pt->mm.n_vmas, pagemap_fd);
	inc_parent_free(&parent);
	if (!ret)
		ret = track_task_rearm(dc->tracker, &t->track);
	if (!ret && !dc->opts->predump_read) {
		ret = inc_plan_copy(&pt->plan);
	} else if (!ret) {
		pt->plan.live = true;
		pt->pidfd = syscall(SYS_pidfd_open, t->pid, 0);
		if (pt->pidfd < 0) {
			pr_perror("pidfd_open(%d)", t->pid);
			ret = -errno;
		}
	}
	if (!ret && t->track.target_fd >= 0) {
		pt->mm.has_amber_track_fd = true;
		pt->mm.amber_track_fd = t->track.target_fd;
	}
	return ret;
}

/* After the tree runs again: the images. */
static int predump_write(struct dump_ctx *dc, struct predump_task *pts)
{
	int ret = dump_write_inventory(dc);

	if (!ret)
		ret = dump_write_pstree(dc);
	for (int i = 0; i < dc->nr_tasks && !ret; i++) {
		struct dump_task *t = dc->tasks[i];

		if (t->zombie)
			continue;
		ret = img_write_one(dc->dirfd, IMG_MM, t->vpid, &pts[i].mm.base);
		if (!ret)
			ret = inc_plan_write(&pts[i].plan, dc->xt, t->vpid);
		/*
		 * Short-lived tasks (a shell's children) exit all the time. Their
		 * image stays; the next dump does not have the task (README, "Not
		 * working yet": a pid that comes back).
		 */
		if (!ret && pts[i].pidfd >= 0 &&
		    syscall(SYS_pidfd_send_signal, pts[i].pidfd, 0, NULL, 0))
			pr_info("task %d exited while its pages were read\n", t->pid);
	}
	return ret;
}

static double ms_since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (t1.tv_sec - t0->tv_sec) * 1e3 + (t1.tv_nsec - t0->tv_nsec) / 1e6;
}

static int cleanup_trackers(struct dump_ctx *dc)
{
	int nr = 0, ret = 0;

	for (int i = 0; i < dc->nr_tasks && !ret; i++) {
		if (dc->tasks[i]->zombie)
			continue;
		ret = track_remove_from_target(dc->tasks[i]->pid);
		if (ret > 0)
			nr += ret, ret = 0;
	}
	if (!ret)
		pr_info("closed %d tracker fd(s) in %d task(s)\n", nr, dc->nr_tasks);
	return ret;
}

int predump_run(const struct dump_opts *opts)
{
	struct dump_ctx dc = { .opts = opts, .dirfd = -1, .parent_dirfd = -1 };
	struct predump_task *pts = NULL;
	struct tracker tr;
	struct timespec t0;
	double frozen_ms = 0, freezing_ms = 0;
	int ret;

	remote_log_init();
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (opts->cleanup) {
		ret = pstree_freeze(&dc, opts->pid);
		if (!ret)
			ret = cleanup_trackers(&dc);
		pstree_release(&dc, false);
		goto out;
	}
	ret = dump_open_dir(&dc);
	if (!ret)
		ret = dump_probe_zero_pfn(&dc.zero_pfn);
	if (!ret) {
		struct dump_opts tracked = *opts;

		if (!tracked.track_mem)
			tracked.track_mem = "auto";
		dc.opts = &tracked;
		ret = dump_setup_tracking(&dc, &tr);
		dc.opts = opts;
	}
	if (!ret)
		ret = dump_xfer_setup(&dc);
	if (ret)
		goto out;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	ret = pstree_freeze(&dc, opts->pid);
	freezing_ms = ms_since(&t0);
	if (!ret && !(pts = calloc(dc.nr_tasks, sizeof(*pts))))
		ret = -ENOMEM;
	for (int i = 0; !ret && i < dc.nr_tasks; i++)
		pts[i].pidfd = -1;
	for (int i = 0; i < dc.nr_tasks && !ret; i++)
		if (!dc.tasks[i]->zombie)
			ret = predump_task(&dc, dc.tasks[i], &pts[i]);
	if (ret)
		dump_undo_tracking(&dc);
	pstree_release(&dc, false);
	frozen_ms = ms_since(&t0);
	if (!ret) {
		ret = predump_write(&dc, pts);
		/* A page server acknowledges every page, or the pre-dump failed. */
		if (!ret)
			ret = xfer_target_fini(steal_ptr(dc.xt));
		/*
		 * Sealed like a dump: a parent in a PKRAM store is checked against
		 * it before it is preserved and again after the kexec.
		 */
		if (!ret)
			ret = img_sums_write(dc.dirfd);
		/* The trackers moved on at the scan: the chain below is stale now. */
		if (ret && dc.parent_dirfd >= 0)
			inc_mark_chain_reset(dc.parent_dirfd);
	}
	if (!ret && opts->auto_dedup && dc.parent_dirfd >= 0 && dedup_image(dc.dirfd))
		pr_warn("dedup of the parent images failed; they are intact but larger\n");
	if (ret) {
		pr_err("pre-dump failed; the tree runs on\n");
		goto out;
	}
	uint64_t pages = 0, parent = 0;

	for (int i = 0; i < dc.nr_tasks; i++) {
		pages += pts[i].plan.nr_present;
		parent += pts[i].plan.nr_parent;
	}
	pr_info("pre-dumped %d task(s): frozen %.3f ms, %llu pages written in %.3f ms total\n",
		dc.nr_tasks, frozen_ms, (unsigned long long)pages, ms_since(&t0));
	/* memdump: the pages copied while frozen and written once it ran again */
	if (opts->stats)
		*opts->stats = (struct amber_dump_stats){
			.freezing_us = freezing_ms * 1000,
			.frozen_us = frozen_ms * 1000,
			.memdump_us = (ms_since(&t0) - freezing_ms) * 1000,
			.pages_written = pages,
			.pages_skipped_parent = parent,
		};
out:
	for (int i = 0; pts && i < dc.nr_tasks; i++) {
		if (pts[i].pidfd >= 0)
			close(pts[i].pidfd);
		inc_plan_free(&pts[i].plan);
		free(pts[i].mm.vmas);
		free(pts[i].vma_store);
	}
	free(pts);
	dump_ctx_free(&dc);
	return ret;
}
