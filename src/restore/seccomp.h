/* SPDX-License-Identifier: MIT */
#ifndef AMBER_RESTORE_SECCOMP_H
#define AMBER_RESTORE_SECCOMP_H

/*
 * seccomp.img on restore: the filters, checked when loaded (every prev
 * points to an earlier filter, so a chain ends), and each thread's chain
 * handed to the restorer oldest first. The restorer installs them in
 * each thread before its credentials (installing one needs root without
 * no_new_privs); amber traces the tree with PTRACE_O_SUSPEND_SECCOMP, so
 * the filters cannot block the rest of the restore.
 */
#include <stdbool.h>

#include "seccomp.pb-c.h"

struct rst_ctx;
struct rst_task;

int rst_load_seccomp(struct rst_ctx *rc);
/*
 * Whether any thread is restored under seccomp: only then is the tree
 * traced with PTRACE_O_SUSPEND_SECCOMP, which needs CAP_SYS_ADMIN.
 */
bool rst_has_seccomp(const struct rst_ctx *rc);
/* The mode and filter index of every thread of @t. */
int rst_check_seccomp(struct rst_ctx *rc, struct rst_task *t);
/*
 * Thread @i's filters, oldest first, into @chain (room for max); their
 * count, and in *bytes the size of their programs.
 */
int rst_seccomp_chain(struct rst_ctx *rc, struct rst_task *t, int i, SeccompFilter **chain,
		      int max, size_t *bytes);

#define RST_SECCOMP_MAX_CHAIN 512

#endif
