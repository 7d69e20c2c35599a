/* SPDX-License-Identifier: MIT */
#ifndef AMBER_RESTORE_STOP_H
#define AMBER_RESTORE_STOP_H

/*
 * Tasks that were stopped at the dump (state T) go back into a group stop
 * before amber lets them go, as CRIU stops them again; done while every
 * thread still sits traced at the exit of its rt_sigreturn:
 *
 *   1. every thread's signal mask is set to block all (saved first)
 *   2. the stop signal is queued to the process
 *   3. the leader runs into it: its delivery (injected back) starts the
 *      group stop, and the leader traps in it (PTRACE_EVENT_STOP)
 *   4. each other thread runs into the group stop too
 *   5. the masks go back
 *
 * The tasks that are not stopped are detached before (see restore.c).
 * Then the detach leaves the group stopped (the kernel sees a finished
 * group stop), and the task takes the stop before any signal it had
 * pending: a pending unblocked signal waits for SIGCONT, as it did.
 */
struct rst_ctx;

int rst_stop_again(struct rst_ctx *rc);

#endif
