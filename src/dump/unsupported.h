/* SPDX-License-Identifier: MIT */
#ifndef AMBER_DUMP_UNSUPPORTED_H
#define AMBER_DUMP_UNSUPPORTED_H

#include <sys/types.h>

/*
 * Task state amber does not save yet, found before the task is frozen, so
 * the dump fails naming it instead of restoring the task without it:
 * namespaces other than amber's own, except a UTS, IPC, net or pid namespace
 * the whole tree shares with its root (saved, ns.h) and a mount namespace
 * with amber's mounts (plus a proc on /proc for the tree's pid namespace).
 * -EOPNOTSUPP then.
 */
int dump_check_supported(pid_t pid, pid_t root);

/* The mounts of @pid are amber's (@proc_over: but for one more proc on /proc). */
bool dump_same_mounts(pid_t pid, bool proc_over);

#endif
