/* SPDX-License-Identifier: MIT */
#ifndef AMBER_DUMP_H
#define AMBER_DUMP_H

/*
 * Dump: the frozen tree and what is collected from it.
 *
 *   dump_ctx
 *     tasks[0..nr_tasks)   parents before children; tasks[0] is the root
 *       dump_task          one process (alive or zombie)
 *         threads[]        dump_thread: registers, xsave, per-thread signals
 *         rem              libcompel handle on the leader and a scratch
 *                          area for remote syscall arguments (unmapped
 *                          before the VMAs are read)
 *
 * The tree stays frozen (every thread ptrace-stopped) from pstree_freeze()
 * until pstree_release(), which either lets it run again exactly as it was
 * or kills it after a successful dump. The network lock (net/netlock.h) is
 * taken right after the freeze; it stays after a successful dump, for the
 * restore to remove, and is removed on failure or with --leave-running.
 */
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/user.h>

#include "amber.h"
#include "dump/ns.h"
#include "files/files.h"
#include "image/image.h"
#include "pageserver/conn.h"
#include "base/pidmap.h"
#include "base/remote.h"
#include "mem/track.h"
#include "net/netlock.h"
#include "base/util.h"
#include "pstree.pb-c.h"

struct dump_opts {
	pid_t pid;
	const char *dir;
	bool leave_running;
	bool shell_job;
	bool orphan_pts; /* a pty slave whose master is outside (orphan_pts_master) */
	bool ext_unix_sk; /* --ext-unix-sk */
	enum netlock_method network_lock; /* --network-lock (NETLOCK_AUTO: default) */
	bool file_locks;  /* --file-locks */
	bool tcp_established; /* --tcp-established */
	bool skip_in_flight;  /* --skip-in-flight */
	/* Incremental: NULL, or "auto", "soft-dirty", "uffd-wp". */
	const char *track_mem;
	/* The parent image, relative to dir (made DIR/parent). */
	const char *prev_dir;
	/* pre-dump: close the trackers in the tree instead of dumping. */
	bool cleanup;
	/*
	 * pre-dump: read the written pages once the tree runs again (CRIU's
	 * "read" mode) instead of copying them while it is frozen ("splice",
	 * the default; see predump.c).
	 */
	bool predump_read;
	/* Punch what this image saves again out of its parents (dedup.h). */
	bool auto_dedup;
	/* --page-server: pages stream to ps_address:ps_port (xfer.h). */
	bool page_server;
	/* --lazy-pages: private anonymous pages served from the frozen tree (lazy.c). */
	bool lazy_pages;
	int status_fd; /* > 0: told (one zero byte, as CRIU) once serving */
	int (*lazy_ready)(void *arg); /* called once serving, or NULL */
	void *lazy_ready_arg;
	const char *ps_address;
	int ps_port;
	struct ps_sec ps_sec;
	/* Containers: mounts saved as external by name (mnt.c). */
	const struct ext_mount *ext_mnts;
	size_t nr_ext_mnts;
	/* The tree's cgroup frozen around the seize (cgroup.c), or NULL. */
	const char *freeze_cgroup;
	bool cgroups_ignore; /* --manage-cgroups=ignore: no cgroup.img */
	/*
	 * Called once every image is written, the tree still frozen: nonzero
	 * fails the dump and the tree runs on as it was. amber kexec preserves
	 * the images and loads the next kernel here, so that the tree dies only
	 * once everything is ready, and never runs on after its final dump.
	 */
	int (*frozen_hook)(void *arg);
	void *frozen_hook_arg;
	struct amber_dump_stats *stats; /* out, or NULL */
	/* --external net[INO]:KEY: the tree's netns is the caller's (ns_net.c). */
	const char *ext_netns_key;
	uint64_t ext_netns_ino;
};

struct dump_thread {
	pid_t tid;  /* as amber sees it */
	pid_t vtid; /* in the tree's pid namespace: what the images hold */
	/* In the pid namespaces below the root's (pidns.c), outermost first. */
	pid_t ns_tids[PIDNS_NESTED_MAX];
	struct user_regs_struct regs;
	uint8_t *xsave; /* NT_X86_XSTATE, standard format */
	size_t xsave_len;
	uint64_t blocked;
	bool seized;
};

struct dump_task {
	pid_t pid, ppid, pgid, sid; /* as amber sees them (/proc, ptrace) */
	pid_t vpid; /* in the tree's pid namespace: names its images */
	/*
	 * Pid namespaces below the root's that it is in (pidns.c), 0: the
	 * root's; that namespace's inode and image id; the vpid of its child
	 * whose namespace its pid_for_children is (unshare), 0: its own.
	 */
	int pidns_level;
	uint64_t pidns_ino;
	uint32_t pidns_id;
	pid_t pidns_children;
	bool zombie;
	int exit_code;
	int stop_sig; /* in a group stop (state T) by this signal, else 0 */
	int nr_threads;
	struct dump_thread *threads;
	struct dump_task *parent;
	struct remote rem; /* on the leader, while the tree is frozen */
	uint32_t files_id; /* fdinfo-<files_id>.img */
	uint32_t cg_set;   /* cgroup.img's set it is in (cgroup.c), 0: none saved */
	struct track_task track; /* with --track-mem */
};

struct dump_ctx {
	const struct dump_opts *opts;
	int dirfd;
	struct img_sums written; /* checksums taken as images were written */
	struct dump_task **tasks;
	int nr_tasks;
	/* inventory's root_cg_set: amber's own set, as CRIU's is criu's (cgroup.c) */
	uint32_t dumper_cg_set;
	uint64_t zero_pfn;  /* pfn of the kernel's zero page: never dumped */
	uint32_t next_id;   /* ids of files and kernel objects in the images */
	uint32_t next_pages_id;
	struct xfer_target *xt; /* where pages go: the directory or a page server */
	struct arena arena;    /* protobuf messages of this dump */
	struct files_dump_ctx files; /* filled by dump_tree() */
	struct tracker *tracker; /* NULL: a full dump */
	int parent_dirfd;	 /* DIR/parent, or -1 */
	/* Shared anonymous memory already dumped, by shmem inode. */
	uint64_t *shmem_done;
	int nr_shmem_done;
	/* seccomp.img: every filter found so far, oldest of a chain first */
	struct SeccompFilter **seccomp;
	size_t nr_seccomp;
	struct netlock netlock; /* taken right after the freeze (dump only) */
	struct dump_ns ns; /* the tree's own namespaces (ns.h) */
	/*
	 * The tree has a network namespace of its own: this thread is in it
	 * from the freeze to the end (base/netns.h), this is amber's. Else -1.
	 */
	int host_netns_fd;
	/*
	 * With a pid namespace of its own (pids.own_ns), every thread of the
	 * tree: host tid <-> tid in its pid namespace. Else empty: the same.
	 */
	struct pid_map pids;
	/* The root's pid namespace: its inode, and NSpid levels amber sees it at. */
	uint64_t root_pidns_ino;
	int root_pid_levels;
	/* For the caller's stats (memory.c adds to them). */
	uint64_t memdump_ns, pages_written, pages_skipped_parent;
};

static inline uint32_t dump_new_id(struct dump_ctx *dc)
{
	return ++dc->next_id;
}

int dump_run(const struct dump_opts *opts);
/* cgroup.img and each task's cg_set (cgroup.c). */
int dump_cgroups(struct dump_ctx *dc);
/* --freeze-cgroup (cgroup.c): freeze (waits for it) or thaw the cgroup @dir. */
int dump_cg_freeze(const char *dir, bool freeze);
/* Every process in @dir (and below) is one of the tree's: 0, or -EBUSY naming it. */
int dump_cg_check_members(const struct dump_ctx *dc, const char *dir);
/*
 * dc->xt: pages go to the image directory, or to the page server of
 * --page-server, connected now (before the freeze).
 */
int dump_xfer_setup(struct dump_ctx *dc);
/* lazy.c: serves the frozen tree's lazy pages until the daemon has them all. */
int dump_serve_lazy(struct dump_ctx *dc);
/* predump.c: memory only, the tree keeps running (or --cleanup). */
int predump_run(const struct dump_opts *opts);

/* dump.c, shared with predump.c */
int dump_open_dir(struct dump_ctx *dc);
int dump_setup_tracking(struct dump_ctx *dc, struct tracker *tr);
int dump_write_pstree(struct dump_ctx *dc);
int dump_write_inventory(struct dump_ctx *dc);
/*
 * After a failure: closes the trackers this dump armed, and marks the
 * parent chain if a scan already re-armed the tracker (mem_inc.h).
 */
void dump_undo_tracking(struct dump_ctx *dc);
void dump_ctx_free(struct dump_ctx *dc);

/*
 * pidns.c: pid namespaces nested below the root's. dump_pidns_root()
 * before the walk; dump_pidns_record() the pids of thread @tid of @t
 * (every level); dump_pidns_check() once the tree is frozen refuses what
 * a restore could not make again; dump_pidns_fill() the pstree entry's
 * amber_pidns_* fields (@tids: room for n_threads * PIDNS_NESTED_MAX).
 */
int dump_pidns_root(struct dump_ctx *dc, pid_t root);
int dump_pidns_record(struct dump_ctx *dc, struct dump_task *t, pid_t tid, pid_t *vtid,
		      pid_t *ns_tids);
int dump_pidns_check(struct dump_ctx *dc);
void dump_pidns_fill(const struct dump_task *t, PstreeEntry *pe, uint32_t *tids);

/* pstree.c: freeze, walk and release the tree. */
int pstree_freeze(struct dump_ctx *dc, pid_t root);
/* kill: SIGKILL every task (after a good dump); else resume as before. */
void pstree_release(struct dump_ctx *dc, bool kill);
struct dump_task *pstree_find(struct dump_ctx *dc, pid_t pid);

#endif
