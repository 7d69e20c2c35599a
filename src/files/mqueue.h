/* SPDX-License-Identifier: MIT */
#ifndef AMBER_FILES_MQUEUE_H
#define AMBER_FILES_MQUEUE_H

/*
 * POSIX message queues (mqueue.c): a queue is an inode of its IPC
 * namespace's mqueue file system, an mq_open() descriptor an open file of
 * it. The descriptors are a file type (file_entry.amber_mq); the queues
 * of the tree's own IPC namespace, with their messages, are saved by
 * dump/ns_ipc_mqueue.c (ipcns-mqueue-<ns>.img) and made again by
 * restore/ns_ipc_mqueue.c through these helpers.
 *
 * Linux has no way to read a queue's messages without taking them: a
 * queue is read by receiving every message (highest priority first,
 * oldest first within one) and sending them back at once in that order,
 * which queues them exactly as they were. Only the queues of a frozen
 * tree's own namespace, and unlinked ones, which only their holders can
 * reach, are read so: nothing else should touch them meanwhile.
 */
#include <stdbool.h>
#include <sys/types.h>

#include "mqueue.pb-c.h"

/* The kernel's bounds (HARD_MSGMAX, HARD_MSGSIZEMAX, MQ_PRIO_MAX). */
#define FILES_MQ_MAX_MSGS  65536
#define FILES_MQ_MAX_SIZE  (16 << 20)
#define FILES_MQ_PRIO_MAX  32768

/* "/NAME" as mq_open() takes it: one slash, then 1..NAME_MAX bytes. */
bool files_mq_name_ok(const char *name);
/* The pid whose mq_notify() is registered on @fd's queue, 0 if none, -errno. */
int files_mq_notify_pid(int fd);
/*
 * Fills @e from queue @fd (amber's own, O_RDWR | O_NONBLOCK): its
 * attributes, owner, mode, and its messages, put back before returning,
 * on the error path too. @e->name is the caller's. Free with
 * files_mq_free_msgs().
 */
int files_mq_read(int fd, MqueueEntry *e);
void files_mq_free_msgs(MqueueEntry *e);
/* An image's queue is sane (named in errors by @img). */
bool files_mq_entry_ok(const MqueueEntry *e, const char *img);
/*
 * Makes @e as @name in the caller's IPC namespace with its owner, mode
 * and messages; -EEXIST (not logged) if @name is taken.
 */
int files_mq_make(const MqueueEntry *e, const char *name);

#endif
