// SPDX-License-Identifier: MIT
/*
 * amber dump: freeze the tree, write every image, then kill the tree or
 * let it run. Any failure lets the tree run on exactly as it was: the
 * remote scratch areas are unmapped, compel restores each thread's
 * registers and every thread is detached.
 */
#define LOG_PREFIX "dump: "
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "core.pb-c.h"
#include "mem/dedup.h"
#include "dump/dump.h"
#include "dump/core.h"
#include "dump/memory.h"
#include "dump/seccomp.h"
#include "base/fault.h"
#include "base/netns.h"
#include "files/files.h"
#include "fs.pb-c.h"
#include "image/magic.h"
#include "image/sums.h"
#include "inventory.pb-c.h"
#include "base/log.h"
#include "mem/inc.h"
#include "base/proc.h"
#include "pstree.pb-c.h"
#include "base/util.h"
#include "mem/xfer.h"

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
	dump_ns_fill_ids(dc, ids, false);
	/* A nested pid namespace's (pidns.c): CRIU's meaning of the field. */
	if (t->pidns_id) {
		ids->has_pid_ns_id = true;
		ids->pid_ns_id = t->pidns_id;
	}
	return ids;
}

static int dump_fs(struct dump_ctx *dc, struct dump_task *t)
{
	FsEntry fe = FS_ENTRY__INIT;
	struct proc_status st;
	int ret;

	ret = files_dump_path(&dc->files, t->pid, "cwd", &fe.cwd_id);
	if (!ret)
		ret = files_dump_path(&dc->files, t->pid, "root", &fe.root_id);
	if (!ret)
		ret = proc_parse_status(t->pid, t->pid, &st);
	if (ret)
		return ret;
	fe.has_umask = true;
	fe.umask = st.umask;
	return img_write_one(dc->dirfd, IMG_FS, t->vpid, &fe.base);
}

/* Picks up the tracker the parent image left in the task, or arms one. */
static int dump_track_prepare(struct dump_ctx *dc, struct dump_task *t)
{
	struct inc_parent p;
	int ret = inc_parent_load(dc->parent_dirfd, t->vpid, &p);

	if (!ret)
		ret = track_task_prepare(dc->tracker, &t->track, t->pid, inc_parent_track_fd(&p));
	inc_parent_free(&p);
	return ret;
}

static int dump_one_task(struct dump_ctx *dc, struct dump_task *t)
{
	struct mm_remote_state mrs;
	TaskKobjIdsEntry *ids = task_ids(dc, t);
	int ret;

	if (!ids)
		return -ENOMEM;
	/* CRIU 4.x reads the ids from ids-<pid>.img, not from the core */
	ret = img_write_one(dc->dirfd, IMG_IDS, t->vpid, &ids->base);
	if (ret)
		return ret;
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
	if (dc->tracker) {
		ret = dump_track_prepare(dc, t);
		if (ret)
			return ret;
	}

	ret = files_dump_task(&dc->files, t->pid, &t->files_id);
	if (!ret && fault_injected("dump-files"))
		ret = -EIO;
	if (!ret)
		ret = dump_fs(dc, t);
	if (!ret)
		ret = dump_task_mm(dc, t, &mrs);
	if (!ret && fault_injected("dump-mm"))
		ret = -EIO;
	return ret;
}

int dump_write_pstree(struct dump_ctx *dc)
{
	struct img *img = img_open(dc->dirfd, IMG_PSTREE, true, 0);
	int ret = 0;

	if (!img)
		return -errno;
	for (int i = 0; i < dc->nr_tasks && !ret; i++) {
		struct dump_task *t = dc->tasks[i];
		PstreeEntry pe = PSTREE_ENTRY__INIT;
		uint32_t tids[t->nr_threads + 1];
		uint32_t ns_tids[(t->nr_threads + 1) * PIDNS_NESTED_MAX];

		/* As the tree sees them: its own pid namespace's pids (as CRIU) */
		pe.pid = t->vpid;
		pe.ppid = t->parent ? t->parent->vpid : 0;
		pe.pgid = pid_map_ns(&dc->pids, t->pgid);
		pe.sid = pid_map_ns(&dc->pids, t->sid);
		for (int j = 0; j < t->nr_threads; j++)
			tids[j] = t->threads[j].vtid;
		if (t->zombie)
			tids[0] = t->vpid;
		pe.n_threads = t->zombie ? 1 : t->nr_threads;
		pe.threads = tids;
		dump_pidns_fill(t, &pe, ns_tids);
		ret = img_write_msg(img, &pe.base);
	}
	if (img_close(img) && !ret)
		ret = -EIO;
	return ret;
}

int dump_write_inventory(struct dump_ctx *dc)
{
	InventoryEntry ie = INVENTORY_ENTRY__INIT;
	TaskKobjIdsEntry ids = TASK_KOBJ_IDS_ENTRY__INIT;
	struct timespec ts;

	ie.img_version = CRTOOLS_IMAGES_V1_1;
	ie.has_fdinfo_per_id = true;
	ie.fdinfo_per_id = true;
	/* Namespace images are named by namespace id (CRIU's older ones by pid). */
	ie.has_ns_per_id = true;
	ie.ns_per_id = true;
	/*
	 * root_ids are the dumper's own (CRIU's are criu's): its object ids
	 * are 0, which no task has. CRIU's restore reads an equal files_id
	 * as "the root shares its parent's fd table" and refuses the set.
	 */
	ie.root_ids = &ids;
	dump_ns_fill_ids(dc, &ids, true);
	if (dc->ns.proc_opts[0])
		ie.amber_pidns_proc = (char *)dc->ns.proc_opts;
	if (dc->dumper_cg_set) {
		ie.has_root_cg_set = true;
		ie.root_cg_set = dc->dumper_cg_set;
	}
	ie.has_lsmtype = true;
	ie.lsmtype = LSMTYPE__NO_LSM;
	clock_gettime(CLOCK_BOOTTIME, &ts);
	ie.has_dump_uptime = true;
	ie.dump_uptime = ts.tv_sec * 1000000ULL + ts.tv_nsec / 1000;
	if (dc->netlock.method >= NETLOCK_IPTABLES && dc->netlock.method <= NETLOCK_SKIP) {
		ie.has_network_lock_method = true;
		ie.network_lock_method = netlock_criu_method(dc->netlock.method);
	}
	if (dc->netlock.run_id[0])
		ie.dump_criu_run_id = dc->netlock.run_id;
	return img_write_one(dc->dirfd, IMG_INVENTORY, 0, &ie.base);
}

/*
 * A tree with its own mounts: the files its restore would make by path
 * among amber's mounts (files_check_mntns()) are refused now, read back
 * from the images as the restore reads them, while the tree can still
 * run on, rather than by the restore once it is gone.
 */
/*
 * The container's terminal (orphan_pts) and the tree's pty pairs are made
 * again in the tree's devpts: each must be on one mounted in the tree
 * (not the host's).
 */
/* A devpts of superblock @kdev (the kernel's encoding) mounted, whole, in @mi. */
static bool devpts_mounted(const char *mi, uint32_t kdev)
{
	char want[32];

	snprintf(want, sizeof(want), " %u:%u / ", kdev >> 20, kdev & 0xfffff);
	for (const char *l = mi; *l;) {
		const char *nl = strchrnul(l, '\n'), *at = strstr(l, want), *fs = strstr(l, " - devpts ");

		if (at && fs && at < nl && fs < nl)
			return true;
		l = *nl ? nl + 1 : nl;
	}
	return false;
}

static int check_tree_devpts(struct dump_ctx *dc, struct files_rst_ctx *fc)
{
	cleanup_free char *mi = read_proc(dc->tasks[0]->pid, "mountinfo", NULL);
	uint32_t kdev = 0, index = 0;
	int ret;

	if (!mi)
		return -errno;
	for (int n = 0; (ret = files_tree_pty_dev(fc, n, &kdev, &index)) == 1; n++) {
		if (devpts_mounted(mi, kdev))
			continue;
		pr_err("the terminal /dev/pts/%u (dev %u:%u) is not on a devpts mounted in the "
		       "tree's mount namespace: its restore could not make it again\n",
		       index, kdev >> 20, kdev & 0xfffff);
		return -EOPNOTSUPP;
	}
	return ret;
}

static int check_mntns_files(struct dump_ctx *dc)
{
	cleanup_free struct files_task *ft = NULL;
	struct files_rst_ctx fc = {
		.dirfd = dc->dirfd,
		/* What an option allows at restore is not the question here. */
		.shell_job = true,
		.orphan_pts = dc->opts->orphan_pts,
		.ext_unix_sk = true,
		.file_locks = true,
		.tcp_established = true,
		.status_fd = -1,
	};
	int ret;

	if (!dc->ns.mnt_ns_id)
		return 0;
	ft = calloc(dc->nr_tasks + 1, sizeof(*ft));
	if (!ft)
		return -ENOMEM;
	for (int i = 0; i < dc->nr_tasks; i++)
		ft[i] = (struct files_task){ .pid = dc->tasks[i]->vpid,
					     .files_id = dc->tasks[i]->files_id,
					     .zombie = dc->tasks[i]->zombie };
	ret = files_load(&fc, ft, dc->nr_tasks);
	if (!ret)
		ret = files_check_mntns(&fc);
	if (!ret)
		ret = check_tree_devpts(dc, &fc);
	files_rst_free(&fc);
	return ret;
}

/* tmpfs (and PKRAM's store, a tmpfs) has nothing to sync: an fsync there is free. */
static bool images_on_tmpfs(int dirfd)
{
	struct statfs sf;

	return !fstatfs(dirfd, &sf) && (sf.f_type == TMPFS_MAGIC || sf.f_type == RAMFS_MAGIC);
}

static int dump_tree(struct dump_ctx *dc)
{
	cleanup_free pid_t *pids = calloc(dc->nr_tasks + 1, sizeof(*pids));
	int ret;

	if (!pids)
		return -ENOMEM;
	for (int i = 0; i < dc->nr_tasks; i++)
		pids[i] = dc->tasks[i]->pid;
	dc->written.defer_sync = !images_on_tmpfs(dc->dirfd);
	dc->files = (struct files_dump_ctx){ .dirfd = dc->dirfd, .xt = dc->xt,
					     .written = &dc->written,
					     .shell_job = dc->opts->shell_job,
					     .orphan_pts = dc->opts->orphan_pts,
					     .ext_unix_sk = dc->opts->ext_unix_sk,
					     .file_locks = dc->opts->file_locks,
					     .tcp_established = dc->opts->tcp_established,
					     .skip_in_flight = dc->opts->skip_in_flight,
					     .tree_pids = pids, .nr_tree_pids = dc->nr_tasks,
					     .pids = &dc->pids,
					     .next_id = &dc->next_id };
	ret = files_dump_init(&dc->files);
	if (!ret)
		ret = dump_namespaces(dc);
	if (!ret)
		ret = dump_cgroups(dc);

	for (int i = 0; i < dc->nr_tasks && !ret; i++) {
		ret = dump_one_task(dc, dc->tasks[i]);
		if (ret)
			pr_err("dumping task %d failed\n", dc->tasks[i]->pid);
	}
	if (!ret)
		ret = files_dump_fini(&dc->files);
	if (!ret)
		ret = dump_write_seccomp(dc);
	if (!ret)
		ret = dump_write_pstree(dc);
	if (!ret)
		ret = dump_write_inventory(dc);
	if (!ret)
		ret = check_mntns_files(dc);
	if (!ret)
		ret = img_sums_write_known(dc->dirfd, &dc->written);
	if (!ret && fault_injected("dump-end"))
		ret = -EIO;
	/* Trackers of earlier pre-dumps have no use once the tree runs untracked. */
	for (int i = 0; !ret && !dc->tracker && dc->opts->leave_running && i < dc->nr_tasks; i++)
		if (!dc->tasks[i]->zombie && track_remove_from_target(dc->tasks[i]->pid) < 0)
			pr_warn("can't remove the memory tracker of %d\n", dc->tasks[i]->pid);
	return ret;
}

void dump_undo_tracking(struct dump_ctx *dc)
{
	bool rearmed = false;

	for (int i = 0; i < dc->nr_tasks; i++)
		rearmed |= dc->tasks[i]->track.rearmed;
	if (rearmed && dc->parent_dirfd >= 0)
		inc_mark_chain_reset(dc->parent_dirfd);
	for (int i = 0; i < dc->nr_tasks; i++) {
		struct track_task *tt = &dc->tasks[i]->track;

		if (track_task_undo(tt) < 0)
			pr_warn("can't remove the memory tracker of %d\n", tt->pid);
	}
}

void dump_ctx_free(struct dump_ctx *dc)
{
	for (int i = 0; i < dc->nr_tasks; i++) {
		struct dump_task *t = dc->tasks[i];

		remote_fini(&t->rem);
		track_task_put(&t->track);
		for (int j = 0; j < t->nr_threads; j++)
			free(t->threads[j].xsave);
		free(t->threads);
		free(t);
	}
	free(dc->tasks);
	free(dc->shmem_done);
	xfer_target_abort(dc->xt);
	files_dump_free(&dc->files);
	img_sums_free(&dc->written);
	netlock_free(&dc->netlock);
	pid_map_free(&dc->pids);
	arena_free(&dc->arena);
	if (dc->dirfd >= 0)
		close(dc->dirfd);
	if (dc->parent_dirfd >= 0)
		close(dc->parent_dirfd);
}

/* Creates the image directory (0700) and its "parent" link; opens both. */
int dump_open_dir(struct dump_ctx *dc)
{
	const struct dump_opts *o = dc->opts;
	int ret = mkdir_p(o->dir, 0700);

	if (ret) {
		pr_err("can't create image directory %s: %s\n", o->dir, strerror(-ret));
		return ret;
	}
	dc->dirfd = open(o->dir, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
	if (dc->dirfd < 0) {
		pr_perror("can't open image directory %s", o->dir);
		return -errno;
	}
	if (!o->prev_dir)
		return 0;
	if ((unlinkat(dc->dirfd, "parent", 0) && errno != ENOENT) ||
	    symlinkat(o->prev_dir, dc->dirfd, "parent")) {
		pr_perror("can't link %s/parent to %s", o->dir, o->prev_dir);
		return -errno;
	}
	dc->parent_dirfd = openat(dc->dirfd, "parent", O_DIRECTORY | O_RDONLY | O_CLOEXEC);
	if (dc->parent_dirfd < 0) {
		pr_perror("can't open the parent images %s (relative to %s)", o->prev_dir, o->dir);
		return -errno;
	}
	return 0;
}

int dump_setup_tracking(struct dump_ctx *dc, struct tracker *tr)
{
	const char *name = dc->opts->track_mem;
	char why[512];
	int ret;

	if (!name && !dc->opts->prev_dir)
		return 0;
	ret = track_select(tr, name ? name : "auto", why, sizeof(why));
	if (ret) {
		pr_err("can't track memory: %s\n", why);
		return ret;
	}
	tr->zero_pfn = dc->zero_pfn;
	dc->tracker = tr;
	pr_info("memory tracker: %s (%s)\n", track_kind_name(tr->kind), why);
	return 0;
}

int dump_xfer_setup(struct dump_ctx *dc)
{
	const struct dump_opts *o = dc->opts;
	struct ps_conn c;
	int ret;

	if (!o->page_server) {
		dc->xt = xfer_target_local(dc->dirfd, &dc->next_pages_id);
		return dc->xt ? 0 : -ENOMEM;
	}
	ret = ps_connect(o->ps_address, o->ps_port, &c);
	if (ret)
		return ret;
	ret = ps_conn_client_secure(&c, &o->ps_sec, o->ps_address);
	if (!ret)
		ret = ps_conn_set_timeout(&c, 0);
	if (!ret) {
		/* a copy of each task pagemap stays here, for the next incremental dump */
		dc->xt = xfer_target_ps(&c, dc->dirfd);
		ret = dc->xt ? 0 : -ENOMEM;
	}
	if (ret)
		ps_conn_close(&c);
	else
		pr_info("pages go to the page server at %s:%d\n", o->ps_address, o->ps_port);
	return ret;
}

/* Drops the packets of the frozen tree's TCP connections (net/netlock.h). */
static int dump_netlock(struct dump_ctx *dc)
{
	cleanup_free pid_t *pids = calloc(dc->nr_tasks, sizeof(*pids));
	int nr = 0;

	if (!pids)
		return -ENOMEM;
	for (int i = 0; i < dc->nr_tasks; i++)
		if (!dc->tasks[i]->zombie)
			pids[nr++] = dc->tasks[i]->pid;
	return netlock_lock(&dc->netlock, dc->dirfd, dc->opts->network_lock, pids, nr,
			    dc->host_netns_fd >= 0);
}

/*
 * A tree in a network namespace of its own: this thread goes in for the
 * rest of the dump, so that sock_diag, the network lock and rtnetlink
 * see the tree's sockets, connections and links.
 */
static int dump_enter_netns(struct dump_ctx *dc)
{
	char path[64];
	struct stat theirs;
	pid_t root = dc->tasks[0]->pid;

	snprintf(path, sizeof(path), "/proc/%d/ns/net", root);
	if (stat(path, &theirs)) {
		pr_perror("can't read %s", path);
		return -errno;
	}
	if (theirs.st_ino == netns_self_ino()) {
		if (dc->opts->ext_netns_key)
			pr_info("external net[%" PRIu64 "]: the tree is in amber's network "
				"namespace, nothing to save\n", dc->opts->ext_netns_ino);
		return 0;
	}
	if (dc->opts->ext_netns_key && theirs.st_ino != dc->opts->ext_netns_ino) {
		pr_err("external net[%" PRIu64 "]:%s names no network namespace of the tree "
		       "(the root's is %lu)\n", dc->opts->ext_netns_ino, dc->opts->ext_netns_key,
		       (unsigned long)theirs.st_ino);
		return -EINVAL;
	}
	return netns_enter_pid(root, &dc->host_netns_fd);
}

int dump_run(const struct dump_opts *opts)
{
	struct dump_ctx dc = { .opts = opts, .dirfd = -1, .parent_dirfd = -1,
			       .host_netns_fd = -1 };
	struct timespec t0, t1;
	uint64_t freeze_end = 0;
	struct tracker tr;
	int ret;

	ret = dump_open_dir(&dc);
	if (ret)
		goto out;
	remote_log_init();
	ret = dump_probe_zero_pfn(&dc.zero_pfn);
	if (!ret)
		ret = dump_setup_tracking(&dc, &tr);
	if (!ret)
		ret = dump_xfer_setup(&dc);
	if (ret)
		goto out;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	ret = pstree_freeze(&dc, opts->pid);
	freeze_end = mono_ns();
	if (!ret && fault_injected("dump-frozen"))
		ret = -EIO;
	if (!ret)
		ret = dump_enter_netns(&dc);
	if (!ret)
		ret = dump_netlock(&dc);
	if (!ret)
		ret = dump_tree(&dc);
	/* A page server must hold every page before the tree may die. */
	if (!ret)
		ret = xfer_target_fini(steal_ptr(dc.xt));
	if (!ret && fault_injected("dump-pages"))
		ret = -EIO;
	if (!ret && opts->lazy_pages)
		ret = dump_serve_lazy(&dc);
	if (!ret && opts->frozen_hook)
		ret = opts->frozen_hook(opts->frozen_hook_arg);
	if (ret)
		dump_undo_tracking(&dc);
	if (ret || opts->leave_running)
		files_dump_resume(&dc.files);
	/* Scratch areas must be unmapped before the threads run again. */
	for (int i = 0; i < dc.nr_tasks; i++)
		remote_fini(&dc.tasks[i]->rem);
	pstree_release(&dc, ret == 0 && !opts->leave_running);
	/* The connections live on in the running tree: let their packets through. */
	if ((ret || opts->leave_running) && netlock_unlock(&dc.netlock, dc.dirfd) && !ret)
		ret = -EIO;
	if (netns_return(steal_fd(dc.host_netns_fd)) && !ret)
		ret = -EIO;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (!ret && opts->auto_dedup && dc.parent_dirfd >= 0 && dedup_image(dc.dirfd))
		pr_warn("dedup of the parent images failed; they are intact but larger\n");
	if (ret)
		pr_err("dump failed; the tree was left running as it was\n");
	else
		pr_info("dumped %d task(s) in %.3f ms (frozen all along)\n", dc.nr_tasks,
			(t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6);
	if (!ret && opts->stats) {
		uint64_t start = t0.tv_sec * 1000000000ull + t0.tv_nsec;
		uint64_t end = t1.tv_sec * 1000000000ull + t1.tv_nsec;

		*opts->stats = (struct amber_dump_stats){
			.freezing_us = (freeze_end - start) / 1000,
			.frozen_us = (end - start) / 1000,
			.memdump_us = dc.memdump_ns / 1000,
			.pages_written = dc.pages_written,
			.pages_skipped_parent = dc.pages_skipped_parent,
		};
	}
out:
	dump_ctx_free(&dc);
	return ret;
}
