/* SPDX-License-Identifier: MIT */
#ifndef AMBER_RESTORE_PIDNS_H
#define AMBER_RESTORE_PIDNS_H

/*
 * Pid namespaces nested below the tree root's (pstree_entry's
 * amber_pidns_*, docs/namespaces.md): checked before any task exists,
 * then made by the tasks that fork their inits.
 */
#include <stdint.h>
#include <sys/types.h>

struct rst_ctx;
struct rst_task;

/* Every task's level, init and pid_for_children, or -EINVAL naming the damage. */
int rst_pidns_check(struct rst_ctx *rc);
/* Thread @i of @t: its tids for clone3's set_tid, innermost first (*@n of them). */
void rst_pidns_thread_tids(const struct rst_task *t, int i, int32_t *set_tid, uint32_t *n);
/* @o's pid as @t's pid namespace sees it: 0 if @o is outside it. */
pid_t rst_pidns_local(const struct rst_task *t, const struct rst_task *o);
/*
 * In @t: clone3 of its child @c with all its saved pids (CLONE_NEWPID for
 * an init). Like fork(); *@pidfd gets a pidfd of @c if @c's namespace is
 * @t's pid_for_children, else -1.
 */
pid_t rst_pidns_fork(struct rst_task *t, struct rst_task *c, int *pidfd);
/* In @t, after its children: pid_for_children back to @pidfd's namespace. */
int rst_pidns_children(int pidfd);

#endif
