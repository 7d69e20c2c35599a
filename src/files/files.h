/* SPDX-License-Identifier: MIT */
#ifndef AMBER_FILES_H
#define AMBER_FILES_H

/*
 * File descriptors: dump and restore.
 *
 * Dump: each task's fd table goes to fdinfo-<files_id>.img (fd number,
 * FD_CLOEXEC, file id); each open file goes once to files.img as a
 * file_entry (regular file, pipe end, FIFO, unix socket, tty), keyed by a
 * file id. Pipe and FIFO contents are peeked with tee() and saved in
 * pipes-data.img / fifo-data.img; unix socket queues in sk-queues.img;
 * unlinked files' contents in ghost-file-<id>.img.
 *
 * Restore: files_load() reads and checks all of the above before anything
 * is forked. files_prepare_shared() runs in amber before the tree is
 * forked: it creates every pipe, socketpair and ghost file (with its data)
 * as fds >= rc->svc_fd_base so that every task inherits them.
 * files_restore_task() runs in each restored task after fork: it puts the
 * task's fds in place (dup2, position, flags) and closes every fd below
 * rc->svc_fd_base that the task should not have. Service fds (>= base) are
 * closed by the restorer at the end.
 */
#include <stdint.h>
#include <sys/types.h>

struct dump_ctx;
struct dump_task;
struct rst_ctx;
struct rst_task;

int files_dump_init(struct dump_ctx *dc);
int files_dump_task(struct dump_ctx *dc, struct dump_task *t);
/* Saves a regular file (a mapped file or the exe) by path; *id for vma/mm. */
int files_dump_path(struct dump_ctx *dc, pid_t pid, const char *map_files_name, uint32_t *id);
int files_dump_fini(struct dump_ctx *dc);
void files_dump_free(struct dump_ctx *dc);

int files_load(struct rst_ctx *rc);
/* Highest fd number any restored task uses, to place service fds above it. */
int files_max_fd(struct rst_ctx *rc);
int files_prepare_shared(struct rst_ctx *rc);
int files_restore_task(struct rst_ctx *rc, struct rst_task *t);
/* Opens regular file @id (from files.img) with @flags; returns fd or -errno. */
int files_open_reg(struct rst_ctx *rc, uint32_t id, int flags);
void files_rst_free(struct rst_ctx *rc);

#endif
