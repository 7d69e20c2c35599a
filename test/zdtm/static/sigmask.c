// SPDX-License-Identifier: GPL-2.0
/* The blocked signal mask survives exactly. */
#include <signal.h>

#include "zdtm.h"

int main(int argc, char **argv)
{
	sigset_t set, cur;
	int sig;

	test_init(argc, argv);
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGPIPE);
	sigaddset(&set, SIGRTMIN + 3);
	sigaddset(&set, SIGRTMAX);
	if (sigprocmask(SIG_SETMASK, &set, NULL))
		return fail_errno("sigprocmask"), 1;
	test_daemon();
	test_waitsig();

	if (sigprocmask(SIG_BLOCK, NULL, &cur))
		return fail_errno("sigprocmask"), 1;
	for (sig = 1; sig < NSIG; sig++) {
		if (sig == 32 || sig == 33) /* glibc-internal, not in sigset_t */
			continue;
		if (sigismember(&cur, sig) != sigismember(&set, sig))
			return fail("signal %d: blocked %d, want %d", sig,
				    sigismember(&cur, sig),
				    sigismember(&set, sig)), 1;
	}
	pass();
	return 0;
}
