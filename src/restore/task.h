/* SPDX-License-Identifier: MIT */
#ifndef AMBER_RESTORE_TASK_H
#define AMBER_RESTORE_TASK_H

#include <sys/types.h>

struct rst_ctx;
struct rst_task;
typedef struct MmEntry MmEntry;

/* clone3 with set_tid = {pid}; like fork(): 0 in the child. */
int rst_clone_pid(pid_t pid, uint64_t flags);
/* clone3 with CLONE_NEWPID: the child is init (pid 1) of a new pid namespace. */
int rst_clone_newpid(uint64_t flags);
/* No new namespace, no chosen pid: a fork (with CLONE_PARENT, its caller's sibling). */
int rst_clone_plain(uint64_t flags);
/* Runs in the new task: never returns. */
void __attribute__((noreturn)) rst_task_run(struct rst_ctx *rc, struct rst_task *t);
/* Anonymous memory where no saved VMA of the task lies (blob.c). */
void *rst_map_unused(const MmEntry *mm, size_t size, int prot, uint64_t floor);
/* Maps the blob, fills its arguments and jumps; returns only on failure. */
int rst_jump_to_blob(struct rst_ctx *rc, struct rst_task *t);

/* Sent by each task to amber before it jumps: where its blob lives. */
struct rst_blob_info {
	int32_t pid;
	int32_t pad;
	uint64_t start, len;
};

#endif
