/* SPDX-License-Identifier: MIT */
#ifndef AMBER_FILES_H
#define AMBER_FILES_H

/*
 * File descriptors: dump and restore.
 *
 * Dump: each task's fd table goes to fdinfo-<files_id>.img (fd number,
 * FD_CLOEXEC, file id); each open file goes once to files.img as a
 * file_entry (regular file, pipe end, FIFO, unix socket, tty, memfd,
 * eventfd, signalfd, timerfd, epoll with its targets, inotify, fanotify,
 * pidfd, inet, netlink and packet sockets; every one with its owner and signal, fown.c),
 * keyed by a file id; with --file-locks the locks held through the fds go
 * to filelocks.img (file_lock.c). Pipe and FIFO contents are peeked with tee() and
 * saved in pipes-data.img / fifo-data.img; unix socket queues in
 * sk-queues.img; unlinked files' contents in ghost-file-<id>.img.
 *
 * Restore: files_load() reads and checks all of the above before anything
 * is forked. files_prepare_shared() runs in amber before the tree is
 * forked: it creates every pipe, socketpair and ghost file (with its data)
 * so that every task inherits them: a file of one task at its own fd
 * number when free, the others as fds >= svc_fd_base (files_place()).
 * files_restore_task() runs in each restored task after fork: it puts the
 * task's fds in place (dup2, position, flags) and closes every fd below
 * svc_fd_base that the task should not have. Service fds (>= base) are
 * closed by the restorer at the end.
 *
 * The callers (dump/, restore/) talk to this folder through two narrow
 * contexts, never their own dump_ctx / rst_ctx:
 *
 *   files_dump_ctx            files_rst_ctx
 *     dirfd, xt, shell_job      dirfd, shell_job, svc_fd_base, status_fd
 *     next_id -> the dump's     memfd_fd(): the restored memfd inodes
 *                id counter     st: files_rst (files_internal.h)
 *     st: files_dump
 *
 * Layout: files.c walks fd tables, deduplicates descriptions (kcmp),
 * loads files.img and fdinfo images and puts fds in place; it knows no
 * type. Each type is one file holding its dump and its restore side by
 * side (reg.c, pipe.c, unix*.c, tty.c, memfd.c, eventfd.c, signalfd.c,
 * timerfd.c, epoll.c, inotify.c), exporting one
 * struct files_type (files_internal.h); table.c lists them. common.c has
 * the helpers the types share (writing a file_entry, finding an rfile,
 * loading a data image, moving an fd above the service base).
 *
 * Adding a type (eventfd, signalfd, inet socket, ...):
 *   1. src/files/<type>.c with LOG_PREFIX "<type>: ", holding
 *        match()  does this fd (struct fd_desc, from /proc) belong to me?
 *        dump()   write its file_entry (files_write_entry()) and any data
 *                 image (files_get_img()); return the new file id;
 *        check()  at load: is the file_entry's sub-message well formed?
 *        open()   in a restored task (or once, before fork, for a file
 *                 that several tasks share): a new description;
 *      and, if the type needs them: load() (its data images, checked
 *      against files.img), prepare() (objects created before fork, as
 *      rfile.svc_fd), late() (before fork, once every file is open:
 *      epoll.c adds its targets), finish() (once every task exists,
 *      stopped, in amber: what needs the tasks' pids or every shared
 *      file open), flags() (F_SETFL flags, when not in the sub-message
 *      found by open), dump_fini()/dump_free(), rst_free().
 *   2. one line in table.c: &files_<type>_type. The table's order is the
 *      order match() is tried in (first match wins) and the order of the
 *      load() and prepare() hooks.
 *   Per-type state, if any, is a field of files_dump / files_rst.
 */
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/pidmap.h"
#include "memfd.pb-c.h"

struct amber_inherit_fd;
struct files_dump;
struct img_sums;
struct files_rst;
struct xfer_target;

/* What the dump of fds needs from the dumper; filled before files_dump_init(). */
struct files_dump_ctx {
	int dirfd;		/* the image directory */
	struct xfer_target *xt; /* memfd contents go here (the dir or a page server) */
	bool shell_job;		/* --shell-job: terminals may be dumped */
	bool orphan_pts;	/* one pty slave whose master is outside (orphan_pts_master) */
	bool ext_unix_sk;	/* --ext-unix-sk: a dgram peer outside the tree by name */
	bool file_locks;	/* --file-locks: held locks are saved, else refused */
	bool tcp_established;	/* --tcp-established: TCP connections saved (tcp.c) */
	bool skip_in_flight;	/* --skip-in-flight: drop connections not accepted yet */
	const pid_t *tree_pids;	/* the dumped tasks (a pidfd must name one) */
	int nr_tree_pids;
	/* host <-> tree pids: what the images hold is the tree's (NULL: the same) */
	const struct pid_map *pids;
	uint32_t *next_id;	/* the dump's counter of object ids */
	/* the mqueue file system of the tree's own IPC namespace; 0: it shares amber's */
	dev_t mq_dev;
	struct img_sums *written; /* checksums of images as written (image.h), or NULL */
	struct files_dump *st;	/* private, made by files_dump_init() */
};

int files_dump_init(struct files_dump_ctx *fc);
/* The fds of frozen task @pid go to fdinfo-<*files_id>.img (an id is made if 0). */
int files_dump_task(struct files_dump_ctx *fc, pid_t pid, uint32_t *files_id);
/* Saves a regular file (a mapped file or the exe) by path; *id for vma/mm. */
int files_dump_path(struct files_dump_ctx *fc, pid_t pid, const char *map_files_name,
		    uint32_t *id);
/*
 * A VMA [start, start + len) of @pid mapping the rings of packet socket
 * @ino (PACKET_MMAP): *id is the socket's file id (the VMA's shmid, as in
 * CRIU). The socket must be dumped already, the whole rings mapped.
 */
int files_packet_map_id(struct files_dump_ctx *fc, pid_t pid, uint64_t ino, uint64_t start,
			uint64_t len, uint64_t pgoff, uint32_t *id);
int files_dump_fini(struct files_dump_ctx *fc);
/*
 * The tree runs on (a failed dump, --leave-running): what the dump put in
 * a state of its own goes back (TCP sockets leave repair mode, data read
 * out of ptys is queued again). Call
 * before the tree is released.
 */
int files_dump_resume(struct files_dump_ctx *fc);
void files_dump_free(struct files_dump_ctx *fc);

/* One restored task, as files_load() needs it. */
struct files_task {
	pid_t pid;
	uint32_t files_id;
	bool zombie;
};

/*
 * What the restore of fds needs from the restorer. dirfd and shell_job are
 * read by files_load(); dirfd and svc_fd_base again by
 * files_prepare_shared(); status_fd by files_restore_task() (kept open).
 */
struct files_rst_ctx {
	int dirfd;
	bool shell_job;
	/* a pty slave saved without its master gets a new pair (pty.c) */
	bool orphan_pts;
	/*
	 * A tree with its own mounts: the root sends that pair's master on
	 * orphan_sk[1] (its service fd), amber receives it on orphan_sk[0].
	 */
	int orphan_sk[2];
	/* Likewise for the masters of the pty pairs made in the tree's devpts. */
	int pty_sk[2];
	bool ext_unix_sk;	/* --ext-unix-sk: sockets may connect outside the tree */
	bool file_locks;	/* --file-locks: filelocks.img may be restored */
	bool tcp_established;	/* --tcp-established: TCP connections restored */
	bool tcp_close;		/* --tcp-close: ... as closed sockets */
	int svc_fd_base;
	int status_fd;
	/* The restored inode of a memfd (an fd in amber), or -1. */
	int (*memfd_fd)(void *arg, const MemfdInodeEntry *mie);
	void *memfd_arg;
	/* A restored task's pid (files_load()'s) as amber sees it, once the tree exists. */
	pid_t (*host_pid)(void *arg, pid_t pid);
	void *host_pid_arg;
	struct files_rst *st; /* private, made by files_load() */
	/* Images amber.sums lists and the loader checks as it reads them (img_sums_check_but()). */
	const struct img_sums *unchecked;
	/*
	 * The tree gets a mount namespace of its own (restore/mnt.c): shared
	 * regular files are opened by files_open_deferred() in the root once
	 * it is there, not by amber among its own mounts.
	 */
	bool defer_paths;
	/*
	 * The tree gets an IPC namespace of its own: its POSIX message queues
	 * are made there, and the shared descriptors of them are opened by
	 * files_open_deferred() in the root too.
	 */
	bool own_ipc;
	/*
	 * amber's pid of the restored root, once every task exists: with
	 * defer_paths, files_finish_shared() binds unix socket names through
	 * its root (/proc/PID/root), among the tree's mounts.
	 */
	pid_t root_pid;
	/* --inherit-fd: the caller's fds (amber's own) that replace saved pipes */
	const struct amber_inherit_fd *inherit_fds;
	size_t nr_inherit_fds;
	const char *ext_netns_key; /* the inherit_fd key of the tree's netns (ns_net.c's) */
};

/* A file lock task i takes again (files_task_locks()), for the restorer. */
enum files_lock_kind { FILES_LOCK_POSIX, FILES_LOCK_FLOCK, FILES_LOCK_OFD, FILES_LOCK_LEASE };
struct files_lock {
	int fd;
	enum files_lock_kind kind;
	bool write;		/* else read (shared) */
	bool breaking;		/* a lease being broken ... */
	bool break_to_read;	/* ... down to a read lease, else to none */
	int64_t start, len;	/* POSIX and OFD; len 0: to the end */
};

/* @tasks[i] is task i for files_restore_task(); read during the call only. */
int files_load(struct files_rst_ctx *fc, const struct files_task *tasks, int nr_tasks);
/* Highest fd number any restored task uses, to place service fds above it. */
int files_max_fd(struct files_rst_ctx *fc);
int files_prepare_shared(struct files_rst_ctx *fc);
/*
 * With defer_paths: the shared regular files, opened by path in the
 * caller's mounts (the restored root, in its new ones, before it forks).
 * With own_ipc: the shared POSIX message queue descriptors, likewise.
 */
int files_open_deferred(struct files_rst_ctx *fc);
/*
 * In the restored root, once a devpts (superblock @kdev, the kernel's
 * encoding) is mounted at @dirfd: the pty saved without its master gets
 * its new pair there, before a bind of its slave (/dev/console) needs it,
 * and so do the tree's pty pairs saved on that devpts, with their indexes.
 */
int files_pty_devpts_mounted(struct files_rst_ctx *fc, int dirfd, uint32_t kdev);
/*
 * With defer_paths: the devpts (kernel dev) and index of the @n-th pty
 * the restore makes in the tree's devpts (the one saved without its
 * master, the pairs): 1, or 0 past the last; -EINVAL if its devpts is
 * unknown.
 */
int files_tree_pty_dev(struct files_rst_ctx *fc, int n, uint32_t *kdev, uint32_t *index);
/*
 * In amber, every task stopped: a new fd of the new master of the pty
 * saved without one (sent by the root when the root made it), -ENOENT if
 * there is none.
 */
int files_orphan_master(struct files_rst_ctx *fc);
/*
 * Files amber would make by path among its own mounts, not the tree's:
 * refused (-EOPNOTSUPP, naming one) when the tree gets a mount namespace
 * of its own: unlinked files, FIFOs, unix sockets bound to a path,
 * inotify and fanotify watches, terminals.
 */
int files_check_mntns(struct files_rst_ctx *fc);
/*
 * Once every task exists, stopped before running any restored code: what
 * needs their pids (unix socket queues, whose messages carry their
 * senders' credentials). Runs in amber, on the service fds it still has.
 */
int files_finish_shared(struct files_rst_ctx *fc);
/*
 * amber's copies of the files it kept at their own fd numbers (every task
 * has its own by now) are closed: amber's next fds are low again, as the
 * libraries it calls next expect (libnftables' select() aborts on an fd
 * past FD_SETSIZE). files_finish_shared() calls it; a failed restore too.
 */
void files_release_placed(struct files_rst_ctx *fc);
int files_restore_task(struct files_rst_ctx *fc, int task);
/*
 * In restored task @pid after files_restore_task(): a session leader takes
 * its pty back as controlling terminal, with its foreground group.
 */
int files_restore_ctty(struct files_rst_ctx *fc, pid_t pid);
/*
 * The locks task @task takes again (filelocks.img, --file-locks): fills
 * up to @max of @out (may be NULL) and returns how many there are.
 */
int files_task_locks(struct files_rst_ctx *fc, int task, struct files_lock *out, int max);
/* At load: does a mapping of @len bytes at @pgoff fit packet socket @id's rings? */
int files_packet_map_check(struct files_rst_ctx *fc, uint32_t id, uint64_t len, uint64_t pgoff);
/* After files_prepare_shared(): a new fd of packet socket @id, to map its rings. */
int files_packet_map_fd(struct files_rst_ctx *fc, uint32_t id);
/* Opens regular file @id (from files.img) with @flags; returns fd or -errno. */
int files_open_reg(struct files_rst_ctx *fc, uint32_t id, int flags);
/* The @i-th inode of memfd.img, NULL past the last. */
MemfdInodeEntry *files_memfd_at(struct files_rst_ctx *fc, int i);
void files_rst_free(struct files_rst_ctx *fc);

#endif
