// SPDX-License-Identifier: GPL-2.0
/*
 * Signal handlers: the installed handler (address, flags, mask) survives
 * and is called with siginfo when the signal is raised after restore.
 */
#include <signal.h>
#include <unistd.h>

#include "zdtm.h"

#define FLAGS (SA_SIGINFO | SA_RESTART)

static volatile int got_signo, got_code, got_pid;

static void handler(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	got_signo = sig;
	got_code = si->si_code;
	got_pid = si->si_pid;
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_sigaction = handler, .sa_flags = FLAGS }, old;

	test_init(argc, argv);
	sigemptyset(&sa.sa_mask);
	sigaddset(&sa.sa_mask, SIGUSR2);
	sigaddset(&sa.sa_mask, SIGRTMIN + 5);
	if (sigaction(SIGUSR1, &sa, NULL) || signal(SIGHUP, SIG_IGN) == SIG_ERR)
		return fail_errno("sigaction"), 1;
	test_daemon();
	test_waitsig();

	if (sigaction(SIGUSR1, NULL, &old))
		return fail_errno("sigaction"), 1;
	if (old.sa_sigaction != handler)
		return fail("handler %p, want %p", (void *)old.sa_sigaction,
			    (void *)handler), 1;
	if ((old.sa_flags & FLAGS) != FLAGS)
		return fail("flags %#x, want %#x", old.sa_flags, FLAGS), 1;
	if (!sigismember(&old.sa_mask, SIGUSR2) ||
	    !sigismember(&old.sa_mask, SIGRTMIN + 5) ||
	    sigismember(&old.sa_mask, SIGINT))
		return fail("sa_mask changed"), 1;
	if (sigaction(SIGHUP, NULL, &old) || old.sa_handler != SIG_IGN)
		return fail("SIGHUP is no longer ignored"), 1;
	if (kill(getpid(), SIGUSR1))
		return fail_errno("kill"), 1;
	if (got_signo != SIGUSR1 || got_code != SI_USER || got_pid != getpid())
		return fail("handler saw signo %d code %d pid %d", got_signo,
			    got_code, got_pid), 1;
	pass();
	return 0;
}
