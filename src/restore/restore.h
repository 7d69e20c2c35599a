/* SPDX-License-Identifier: MIT */
#ifndef AMBER_RESTORE_H
#define AMBER_RESTORE_H

/*
 * Restore: the tree as read from the images, and the restore sequence.
 *
 *   rst_ctx
 *     tasks[0..nr_tasks)  parents before children; tasks[0] is the root
 *       rst_task          one process: pstree entry, per-thread cores, mm,
 *                         pages (pagemap_chain.h: runs into pages-N.img
 *                         of this dump and its parents)
 *
 * 1. rst_load(): read and check every image. Nothing is forked before the
 *    whole set is known good.
 * 2. files_prepare_shared() and shmem_prepare() make objects shared between
 *    tasks, as fds >= svc_fd_base that every task inherits.
 * 3. The root is cloned with its saved pid (clone3 set_tid); each task
 *    forks its own children the same way, then puts its fds, cwd, umask and
 *    rlimits in place while libc is still there. Before it forks, a task
 *    lays out and fills its private anonymous memory (premap.h), so that
 *    its children start sharing those pages, as they did when dumped.
 * 4. Each task maps the restorer blob and jumps into it (restorer_args.h).
 * 5. amber, tracing every task, catches each thread at the exit of its
 *    rt_sigreturn, unmaps the blob with a remote syscall and detaches.
 *
 * The dump's network lock (net/netlock.h) is loaded with the images and
 * removed once every task sits stopped with its sockets in place, right
 * before TCP repair mode is switched off; a failed restore removes it too.
 */
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "amber.h"
#include "core.pb-c.h"
#include "files/files.h"
#include "memfd.pb-c.h"
#include "mm.pb-c.h"
#include "pagemap.pb-c.h"
#include "base/pidmap.h"
#include "mem/pagemap_chain.h"
#include "net/netlock.h"
#include "pstree.pb-c.h"
#include "fs.pb-c.h"
#include "restore/ns.h"

/* amber.h's struct amber_veth, field for field. */
struct rst_veth {
	const char *in;
	const char *out;
	const char *bridge;
};

struct restore_opts {
	const char *dir;
	bool detach;
	bool shell_job;
	bool ext_unix_sk;	 /* --ext-unix-sk */
	bool file_locks;	 /* --file-locks */
	bool tcp_established;	 /* --tcp-established */
	bool tcp_close;		 /* --tcp-close */
	bool lazy;		 /* --lazy-pages */
	/* The lazy-pages daemon: it makes no mounts, so their images are not read. */
	bool pages_only;
	const char *lazy_socket; /* the lazy-pages daemon's socket */
	/* --network-lock: as CRIU, the images' own method wins (a warning if they differ) */
	enum netlock_method network_lock;
	/* Containers: the root mount of the saved mount namespace (mnt.c). */
	const char *root;
	const struct ext_mount *ext_mnts;
	size_t nr_ext_mnts;
	/* The cgroup the restored tasks go in (cgroup.c), or NULL: amber's. */
	const char *cgroup_root;
	bool cgroups_ignore;
	bool cgroups_strict; /* full/strict: a task that can't join its cgroup fails the restore */
	/* which cgroups are made and which get their saved properties (cgroup.c) */
	enum amber_manage_cgroups cgroups_mode;
	bool sibling; /* the root is amber's parent's child (needs detach) */
	/* --inherit-fd: the caller's fds that replace saved files (files/pipe.c) */
	const struct amber_inherit_fd *inherit_fds;
	size_t nr_inherit_fds;
	int (*notify)(void *arg, const char *stage, pid_t pid); /* amber.h's */
	void *notify_arg;
	/* the new master of the pty saved without one (amber.h's orphan_pts_master) */
	int (*orphan_pts)(void *arg, int master_fd);
	void *orphan_pts_arg;
	const struct rst_veth *veths; /* the host ends of the tree's veths (amber_veth) */
	size_t nr_veths;
	/*
	 * restore --pkram: the pages are moved out of the store into the
	 * tree (premap.c), not copied; pages_verified: every page was checked
	 * against its checksum just before, so the fill does not sum again.
	 */
	bool pkram_move;
	bool pages_verified;
};

struct rst_shmem {
	uint64_t shmid; /* the dumped shmem inode */
	uint64_t size;	/* page aligned */
	MemfdInodeEntry *memfd; /* a memfd's inode (files/memfd.c owns it), else NULL */
	int fd;		/* created by shmem_prepare(), >= svc_fd_base */
	struct pm_layer pages; /* vaddr is the offset in the object */
};

struct rst_task {
	PstreeEntry *pe;
	pid_t pid, ppid, pgid, sid;
	bool zombie;
	int exit_code;
	int stop_sig; /* stopped at the dump: stopped again by this signal */
	int nr_threads;
	CoreEntry **cores; /* [0] is the leader */
	MmEntry *mm;
	FsEntry *fs;
	uint32_t files_id;
	struct pm_chain pages; /* runs through the parent images, if any */
	struct rst_task *parent;
	struct rst_task **children;
	int nr_children;
	/*
	 * Pid namespaces below the root's it is in (pidns.c), 0: the root's;
	 * the init of its namespace (NULL: the root's); the child whose
	 * namespace its pid_for_children is, NULL: its own.
	 */
	int pidns_level;
	struct rst_task *pidns_init;
	struct rst_task *pidns_children;
	/* Set in the task itself before it forks (premap.h): 0/NULL in amber. */
	uint64_t premap_start, premap_len;
	uint64_t *premap;
	/*
	 * Set in the task itself (task.c): its root is not amber's, so the
	 * restorer chroots into root_fd and enters cwd_fd, once nothing is
	 * left to open by amber's paths.
	 */
	bool chroot;
	int root_fd, cwd_fd;
};

struct rst_ctx {
	const struct restore_opts *opts;
	int dirfd;
	struct rst_task *tasks;
	int nr_tasks;
	struct rst_shmem *shmems;
	int nr_shmems;
	int svc_fd_base;
	struct files_rst_ctx files; /* filled by rst_load() and amber_restore() */
	struct img_sums unchecked;  /* tcp-stream images: checked as files_load() reads them */
	int status_fd; /* tasks report failures to amber through this pipe */
	int info_fd;   /* tasks send struct rst_blob_info here */
	int lazy_fd;   /* --lazy-pages: connection to the keeper, or -1 */
	/*
	 * --lazy-pages of a tree in a user namespace of its own: /dev/userfaultfd
	 * (>= svc_fd_base), from which each task makes its uffd; amber, in
	 * the host's namespace, hands it its features (ns_user.c). Else -1.
	 */
	int uffd_dev_fd;
	const struct pm_pages_src *pages_src; /* NULL: pages files are in dirfd */
	struct pm_pages_src lazy_pages;	      /* handed over by the lazy-pages daemon */
	struct rst_ns ns; /* the tree's own namespaces (ns.h) */
	uint64_t uffd_features; /* the event features this kernel has */
	struct SeccompEntry *seccomp; /* seccomp.img, or NULL */
	struct netlock netlock; /* the dump's network lock: removed at the end */
	/*
	 * The tree's pids (the images') <-> amber's, for ptrace, kill and
	 * /proc: filled as each thread is first traced when the tree has a
	 * pid namespace of its own (ns.new_pid), else the same.
	 */
	struct pid_map pids;
	struct CgroupEntry *cg; /* cgroup.img, NULL if none or ignored (cgroup.c) */
	/*
	 * The root's set has a cgns_prefix (a cgroup namespace of its own):
	 * the root joins cgns_dir (amber's path of the namespace's v2 root;
	 * NULL: it stays where it is) and unshares one there.
	 */
	bool cgns;
	char *cgns_dir;
	char **cg_made; /* the cgroups this restore made, parents first */
	size_t nr_cg_made;
	/*
	 * The inode of the root's pid namespace, set in the root before it
	 * forks: its children inherit it, nested ones too (the lazy daemon
	 * finds a task by it and its pid there).
	 */
	uint64_t root_pidns_ino;
	bool forked; /* the root was cloned: a failure kills what was made */
};

/* cgroup.c: cgroup.img read and checked; the tasks put in their cgroups. */
int rst_cgroup_load(struct rst_ctx *rc);
int rst_cgroup_apply(struct rst_ctx *rc);
/* A failed restore, its tasks killed: the cgroups it made removed (or forgotten). */
void rst_cgroup_undo(struct rst_ctx *rc);
void rst_cgroup_forget(struct rst_ctx *rc);
/*
 * Before any task exists: the saved v2 cgroups made and given their
 * properties as --manage-cgroups says; a cgroup strict finds, or props
 * and none miss, refuses the restore.
 */
int rst_cgroup_prepare(struct rst_ctx *rc);
/*
 * In the restored root, before its children: the tree's own cgroup
 * namespace (rc->cgns), rooted where it was. No-op without one.
 */
int rst_cgroup_enter_ns(struct rst_ctx *rc);

/* The host pid of the tree's @pid: 0 if not seen yet in its own pid namespace. */
static inline pid_t rst_host_pid(const struct rst_ctx *rc, pid_t pid)
{
	return pid_map_host(&rc->pids, pid);
}

/*
 * 0 once the tree runs (detach) or its root has exited (then
 * *wait_status is its waitpid() status); -errno otherwise, every task
 * created killed. @root_pid and @wait_status may be NULL.
 */
int restore_run(const struct restore_opts *opts, pid_t *root_pid, int *wait_status);

int rst_load(struct rst_ctx *rc);
/* A memfd inode of memfd.img: restored like shared memory, with its name. */
int rst_add_memfd(struct rst_ctx *rc, MemfdInodeEntry *mie);
/* aio.c: a task's AIO rings match their ring VMAs, laid out as private memory. */
int rst_check_aio_rings(struct rst_task *t);
void rst_free(struct rst_ctx *rc);
struct rst_task *rst_find_task(struct rst_ctx *rc, pid_t pid);

#endif
