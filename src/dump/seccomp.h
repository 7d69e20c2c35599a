/* SPDX-License-Identifier: MIT */
#ifndef AMBER_DUMP_SECCOMP_H
#define AMBER_DUMP_SECCOMP_H

/*
 * seccomp and no_new_privs of each thread, as CRIU keeps them:
 *
 *   thread_core_entry.seccomp_mode     disabled, strict or filter
 *   thread_core_entry.seccomp_filter   index of the thread's newest filter
 *   seccomp.img  seccomp_entry.seccomp_filters[]: BPF program, flags, and
 *                prev, the filter installed before it (a chain per thread;
 *                a filter several threads have is written once)
 *   thread_core_entry.amber_no_new_privs   amber's own (1001)
 *
 * The filters are read with PTRACE_SECCOMP_GET_FILTER; the tree is seized
 * with PTRACE_O_SUSPEND_SECCOMP so that they do not apply to the remote
 * syscalls of the dump.
 */
#include <sys/types.h>

#include "core.pb-c.h"

struct dump_ctx;

int dump_thread_seccomp(struct dump_ctx *dc, pid_t pid, pid_t tid, ThreadCoreEntry *tc);
/* seccomp.img, if any thread has a filter. */
int dump_write_seccomp(struct dump_ctx *dc);

#endif
