// SPDX-License-Identifier: GPL-2.0
/*
 * Pending signals: blocked and raised before the dump (a thread-directed
 * standard signal and two queued process-wide real-time signals with
 * values); unblocked after restore, each is delivered with its siginfo.
 */
#include <signal.h>
#include <unistd.h>

#include "zdtm.h"

#define RT_SIG (SIGRTMIN + 2)

static volatile int nr_usr1, nr_rt, rt_vals[4];

static void handler(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	if (sig == SIGUSR1 && si->si_code == SI_TKILL)
		nr_usr1++;
	else if (sig == RT_SIG && si->si_code == SI_QUEUE && nr_rt < 4)
		rt_vals[nr_rt++] = si->si_value.sival_int;
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_sigaction = handler, .sa_flags = SA_SIGINFO };
	sigset_t set, pend;

	test_init(argc, argv);
	sigemptyset(&sa.sa_mask);
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, RT_SIG);
	if (sigaction(SIGUSR1, &sa, NULL) || sigaction(RT_SIG, &sa, NULL) ||
	    sigprocmask(SIG_BLOCK, &set, NULL))
		return fail_errno("setup"), 1;
	if (raise(SIGUSR1) ||
	    sigqueue(getpid(), RT_SIG, (union sigval){ .sival_int = 1111 }) ||
	    sigqueue(getpid(), RT_SIG, (union sigval){ .sival_int = 2222 }))
		return fail_errno("raise"), 1;
	test_daemon();
	test_waitsig();

	if (sigpending(&pend) || !sigismember(&pend, SIGUSR1) ||
	    !sigismember(&pend, RT_SIG))
		return fail("signals are no longer pending"), 1;
	if (nr_usr1 || nr_rt)
		return fail("a blocked signal was delivered"), 1;
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	if (nr_usr1 != 1)
		return fail("SIGUSR1 delivered %d times, want 1", nr_usr1), 1;
	if (nr_rt != 2 || rt_vals[0] != 1111 || rt_vals[1] != 2222)
		return fail("RT signals: %d delivered, values %d %d", nr_rt,
			    rt_vals[0], rt_vals[1]), 1;
	pass();
	return 0;
}
