/* SPDX-License-Identifier: MIT */
#ifndef AMBER_FILES_INTERNAL_H
#define AMBER_FILES_INTERNAL_H

/*
 * Private to files_*.c: the state hung off dump_ctx->files and
 * rst_ctx->files, and the helpers the split files share.
 *
 * Dump: every open file description gets one id (dumped_file). Two fds,
 * in one task or in several, are the same description when they point to
 * the same inode and kcmp(KCMP_FILE) says so (fallback without kcmp: same
 * inode, pos and flags). Unix sockets are remembered with their peer inode
 * so files_dump_fini() can refuse a socket whose peer is outside the tree.
 *
 * Restore: files.img is loaded into rfile[] sorted by id. Objects that
 * must be shared between tasks (pipes, sockets, ghost files, ttys, and
 * regular files or FIFOs used by more than one task) are opened by
 * files_prepare_shared() as service fds (rfile.svc_fd >= svc_fd_base);
 * everything else is opened by the task itself.
 */
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "fdinfo.pb-c.h"
#include "ghost-file.pb-c.h"
#include "memfd.pb-c.h"
#include "image/image.h"

struct dump_ctx;
struct dump_task;
struct rst_ctx;
struct rst_task;

/* Bits of f_flags that F_SETFL can change. */
#define FILES_SETFL_MASK (O_APPEND | O_NONBLOCK | O_ASYNC | O_DIRECT | O_NOATIME)
/* __O_TMPFILE without the O_DIRECTORY part. */
#define FILES_O_TMPFILE_BIT 020000000
/* Sanity limits for what images may ask for. */
#define FILES_MAX_FD	    (1 << 20)
#define FILES_MAX_PIPE_SZ   (1u << 30)

/* ---- dump ---- */

/* One fd of a frozen task, as /proc describes it. */
struct fd_desc {
	pid_t pid;
	int fd;
	int pidfd;
	struct stat st; /* of the open file (stat through /proc/PID/fd/N) */
	char link[PATH_MAX];
	uint64_t pos;
	uint32_t flags; /* f_flags, O_CLOEXEC stripped */
	bool cloexec;
	int mnt_id;
};

struct dumped_file {
	uint32_t id;
	FdTypes type;
	pid_t pid; /* first holder, for kcmp */
	int fd;
	dev_t dev;
	ino_t ino;
	uint64_t pos;
	uint32_t flags;
};

struct dumped_path {
	uint32_t id;
	dev_t dev;
	ino_t ino;
	char *path;
};

struct dumped_usk {
	uint32_t id, ino, peer, state;
	pid_t pid;
	int fd;
	bool named;
};

struct dumped_tty {
	dev_t rdev;
	uint32_t info_id;
};

struct dumped_memfd {
	dev_t dev;
	ino_t ino;
	uint32_t inode_id; /* its memfd_inode_entry */
};

struct files_dump {
	struct dumped_file *files;
	int nr_files;
	struct dumped_path *paths;
	int nr_paths;
	struct dumped_usk *usks;
	int nr_usks;
	uint64_t *pipes_done; /* pipe inodes whose data is saved */
	int nr_pipes_done;
	uint64_t *fifos_done;
	int nr_fifos_done;
	struct dumped_tty *ttys;
	int nr_ttys;
	struct dumped_memfd *memfds;
	int nr_memfds;
	struct img *pipes_data, *fifo_data, *sk_queues, *tty_info, *memfd_inodes;
	bool own_files_img;
};

/* files_dump.c */
int files_write_entry(struct dump_ctx *dc, const FileEntry *fe);
int files_get_img(struct dump_ctx *dc, struct img **img, enum img_type type);
int files_remember(struct dump_ctx *dc, const struct fd_desc *d, uint32_t id, FdTypes type);
/* files_dump_reg.c: regular files, ghosts, pipes, FIFOs */
int files_dump_reg(struct dump_ctx *dc, const struct fd_desc *d, uint32_t *id);
int files_dump_reg_path(struct dump_ctx *dc, const char *path, const char *proc_path,
			const struct stat *st, uint32_t flags, uint64_t pos, int mnt_id,
			uint32_t *id);
int files_dump_pipe(struct dump_ctx *dc, const struct fd_desc *d, uint32_t *id);
int files_dump_fifo(struct dump_ctx *dc, const struct fd_desc *d, uint32_t *id);
/* files_dump_memfd.c */
bool files_is_memfd(const char *path);
int files_dump_memfd(struct dump_ctx *dc, const char *path, const char *proc_path,
		     const struct stat *st, uint32_t flags, uint64_t pos, uint32_t *id);
/* files_dump_sk.c: unix sockets and ttys */
int files_dump_socket(struct dump_ctx *dc, const struct fd_desc *d, uint32_t *id);
int files_dump_tty(struct dump_ctx *dc, const struct fd_desc *d, uint32_t *id);
bool files_is_tty(dev_t rdev);
int files_check_usk_peers(struct dump_ctx *dc);

/* ---- restore ---- */

struct rfile {
	FileEntry *fe;
	int svc_fd;    /* >= svc_fd_base once prepared, else -1 */
	int nr_tasks;  /* tasks with an fd on this file */
	int last_task; /* index of the last task counted */
	GhostFileEntry *ghost;
	int ghost_fd;  /* the recreated unlinked file, >= svc_fd_base */
};

struct rdata {
	uint32_t id; /* pipe_id, or id_for in sk-queues */
	uint32_t size;
	uint32_t len;
	uint8_t *data;
};

struct rtask_fds {
	FdinfoEntry **fds;
	int nr;
};

struct rpipe {
	uint32_t pipe_id;
	int fds[2];	    /* created pipe, >= svc_fd_base; -1 once handed out */
	int any;	    /* the read end's number, to reopen it (not owned) */
	bool is_fifo;
};

struct files_rst {
	struct rfile *files; /* sorted by id */
	int nr_files;
	struct rdata *pipe_data, *fifo_data, *skq;
	int nr_pipe_data, nr_fifo_data, nr_skq;
	struct rtask_fds *tasks; /* parallel to rc->tasks */
	int nr_tasks;
	struct rpipe *pipes;
	int nr_pipes;
	MemfdInodeEntry **memfds; /* memfd.img; their objects are rc->shmems */
	int nr_memfds;
};

/* files_restore.c */
struct rfile *files_rfile(struct files_rst *fr, uint32_t id);
struct rfile *files_usk_by_ino(struct files_rst *fr, uint32_t ino);
struct rdata *files_rdata(struct rdata *arr, int nr, uint32_t id);
MemfdInodeEntry *files_memfd_inode(struct files_rst *fr, uint64_t inode_id);
/* files_restore_open.c */
int files_move_high(int fd, int base);
int files_open_rfile(struct rst_ctx *rc, struct rfile *rf, int *out);
/* files_restore_sk.c */
int files_prepare_usk(struct rst_ctx *rc, struct rfile *rf);
int files_prepare_tty(struct rst_ctx *rc, struct rfile *rf);
int files_prepare_ghost(struct rst_ctx *rc, struct rfile *rf);

#endif
