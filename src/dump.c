// SPDX-License-Identifier: MIT
/*
 * amber dump: freeze the tree, write every image, then kill the tree or
 * let it run. Any failure lets the tree run on exactly as it was: the
 * remote scratch areas are unmapped, compel restores each thread's
 * registers and every thread is detached.
 */
#define LOG_PREFIX "dump: "
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core.pb-c.h"
#include "dump.h"
#include "dump_core.h"
#include "dump_mm.h"
#include "fault.h"
#include "files.h"
#include "fs.pb-c.h"
#include "image_magic.h"
#include "image_sums.h"
#include "inventory.pb-c.h"
#include "log.h"
#include "proc.h"
#include "pstree.pb-c.h"
#include "util.h"

static TaskKobjIdsEntry *task_ids(struct dump_ctx *dc, struct dump_task *t)
{
	TaskKobjIdsEntry *ids = arena_new(&dc->arena, TaskKobjIdsEntry);

	if (!ids)
		return NULL;
	task_kobj_ids_entry__init(ids);
	ids->vm_id = dump_new_id(dc);
	ids->files_id = t->files_id = dump_new_id(dc);
	ids->fs_id = dump_new_id(dc);
	ids->sighand_id = dump_new_id(dc);
	return ids;
}

static int dump_fs(struct dump_ctx *dc, struct dump_task *t)
{
	FsEntry fe = FS_ENTRY__INIT;
	struct proc_status st;
	int ret;

	ret = files_dump_path(dc, t->pid, "cwd", &fe.cwd_id);
	if (!ret)
		ret = files_dump_path(dc, t->pid, "root", &fe.root_id);
	if (!ret)
		ret = proc_parse_status(t->pid, t->pid, &st);
	if (ret)
		return ret;
	fe.has_umask = true;
	fe.umask = st.umask;
	return img_write_one(dc->dirfd, IMG_FS, t->pid, &fe.base);
}

static int dump_one_task(struct dump_ctx *dc, struct dump_task *t)
{
	struct mm_remote_state mrs;
	TaskKobjIdsEntry *ids = task_ids(dc, t);
	int ret;

	if (!ids)
		return -ENOMEM;
	if (t->zombie)
		return dump_task_core(dc, t, ids);

	ret = remote_init(&t->rem, t->pid, t->pid);
	if (ret)
		return ret;
	ret = dump_task_core(dc, t, ids);
	if (!ret)
		ret = dump_mm_remote_state(t, &mrs);
	/* The scratch area must be gone before the VMAs are read. */
	remote_fini(&t->rem);
	if (ret)
		return ret;
	if (fault_injected("dump-core"))
		return -EIO;

	ret = files_dump_task(dc, t);
	if (!ret)
		ret = dump_fs(dc, t);
	if (!ret)
		ret = dump_task_mm(dc, t, &mrs);
	if (!ret && fault_injected("dump-mm"))
		ret = -EIO;
	return ret;
}

static int dump_pstree(struct dump_ctx *dc)
{
	struct img *img = img_open(dc->dirfd, IMG_PSTREE, true, 0);
	int ret = 0;

	if (!img)
		return -errno;
	for (int i = 0; i < dc->nr_tasks && !ret; i++) {
		struct dump_task *t = dc->tasks[i];
		PstreeEntry pe = PSTREE_ENTRY__INIT;
		uint32_t tids[t->nr_threads + 1];

		pe.pid = t->pid;
		pe.ppid = t->parent ? t->parent->pid : 0;
		pe.pgid = t->pgid;
		pe.sid = t->sid;
		for (int j = 0; j < t->nr_threads; j++)
			tids[j] = t->threads[j].tid;
		if (t->zombie)
			tids[0] = t->pid;
		pe.n_threads = t->zombie ? 1 : t->nr_threads;
		pe.threads = tids;
		ret = img_write_msg(img, &pe.base);
	}
	if (img_close(img) && !ret)
		ret = -EIO;
	return ret;
}

static int dump_inventory(struct dump_ctx *dc)
{
	InventoryEntry ie = INVENTORY_ENTRY__INIT;
	TaskKobjIdsEntry ids = TASK_KOBJ_IDS_ENTRY__INIT;
	struct timespec ts;

	ie.img_version = CRTOOLS_IMAGES_V1_1;
	ie.has_fdinfo_per_id = true;
	ie.fdinfo_per_id = true;
	ie.root_ids = &ids;
	ids.files_id = dc->tasks[0]->files_id;
	ie.has_lsmtype = true;
	ie.lsmtype = LSMTYPE__NO_LSM;
	clock_gettime(CLOCK_BOOTTIME, &ts);
	ie.has_dump_uptime = true;
	ie.dump_uptime = ts.tv_sec * 1000000ULL + ts.tv_nsec / 1000;
	return img_write_one(dc->dirfd, IMG_INVENTORY, 0, &ie.base);
}

static int dump_tree(struct dump_ctx *dc)
{
	int ret = files_dump_init(dc);

	for (int i = 0; i < dc->nr_tasks && !ret; i++) {
		ret = dump_one_task(dc, dc->tasks[i]);
		if (ret)
			pr_err("dumping task %d failed\n", dc->tasks[i]->pid);
	}
	if (!ret)
		ret = files_dump_fini(dc);
	if (!ret)
		ret = dump_pstree(dc);
	if (!ret)
		ret = dump_inventory(dc);
	if (!ret)
		ret = img_sums_write(dc->dirfd);
	if (!ret && fault_injected("dump-end"))
		ret = -EIO;
	return ret;
}

static void dump_ctx_free(struct dump_ctx *dc)
{
	for (int i = 0; i < dc->nr_tasks; i++) {
		struct dump_task *t = dc->tasks[i];

		remote_fini(&t->rem);
		for (int j = 0; j < t->nr_threads; j++)
			free(t->threads[j].xsave);
		free(t->threads);
		free(t);
	}
	free(dc->tasks);
	free(dc->shmem_done);
	files_dump_free(dc);
	arena_free(&dc->arena);
	if (dc->dirfd >= 0)
		close(dc->dirfd);
}

int amber_dump(const struct dump_opts *opts)
{
	struct dump_ctx dc = { .opts = opts, .dirfd = -1 };
	struct timespec t0, t1;
	int ret;

	ret = mkdir_p(opts->dir, 0700);
	if (ret) {
		pr_err("can't create image directory %s: %s\n", opts->dir, strerror(-ret));
		return ret;
	}
	dc.dirfd = open(opts->dir, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
	if (dc.dirfd < 0) {
		pr_perror("can't open image directory %s", opts->dir);
		return -errno;
	}
	remote_log_init();
	ret = dump_probe_zero_pfn(&dc.zero_pfn);
	if (ret)
		goto out;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	ret = pstree_freeze(&dc, opts->pid);
	if (!ret)
		ret = dump_tree(&dc);
	/* Scratch areas must be unmapped before the threads run again. */
	for (int i = 0; i < dc.nr_tasks; i++)
		remote_fini(&dc.tasks[i]->rem);
	pstree_release(&dc, ret == 0 && !opts->leave_running);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (ret)
		pr_err("dump failed; the tree was left running as it was\n");
	else
		pr_info("dumped %d task(s) in %.3f ms (frozen all along)\n", dc.nr_tasks,
			(t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6);
out:
	dump_ctx_free(&dc);
	return ret;
}
