/* SPDX-License-Identifier: MIT */
#ifndef AMBER_RESTORE_CREDS_H
#define AMBER_RESTORE_CREDS_H

/*
 * The credentials each restored thread ends up with, against what the
 * caller may give (amber's own creds, inherited by every task it forks):
 *
 *   image creds == ours           the restorer leaves the ids alone, so
 *                                 a user with only CAP_CHECKPOINT_RESTORE
 *                                 restores its own tree
 *   other ids                     needs CAP_SETUID and CAP_SETGID
 *   caps beyond our permitted     never possible (capset can't raise them)
 *   a smaller bounding set        needs CAP_SETPCAP
 *   a thread under seccomp        needs CAP_SYS_ADMIN (the tree is traced
 *                                 with PTRACE_O_SUSPEND_SECCOMP)
 *   a hard rlimit above ours      needs CAP_SYS_RESOURCE (the tasks start
 *                                 with amber's limits)
 *
 * Checked before any task exists, so a refusal names what is missing
 * instead of a task dying in the restorer.
 */
#include <stdbool.h>

#include "creds.pb-c.h"

struct rst_ctx;

int rst_check_creds(struct rst_ctx *rc);
/* The ids (uids, gids, groups) of @ce are the caller's own: nothing to set. */
bool rst_creds_ids_ours(const CredsEntry *ce);

#endif
