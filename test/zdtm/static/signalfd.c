// SPDX-License-Identifier: GPL-2.0
/*
 * signalfds: blocked signals pending before the dump (SIGUSR1 and a
 * queued real-time signal with a value) are read through the signalfd
 * after the restore; a second signalfd with another mask sees only its
 * own signal, sent after the restore.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "zdtm.h"

static int next(int fd, struct signalfd_siginfo *si)
{
	return read(fd, si, sizeof(*si)) == sizeof(*si) ? 0 : -1;
}

int main(int argc, char **argv)
{
	struct signalfd_siginfo si;
	union sigval val = { .sival_int = 77 };
	sigset_t both, usr2, all;
	int rt = SIGRTMIN + 2, a, b;

	test_init(argc, argv);
	sigemptyset(&both);
	sigaddset(&both, SIGUSR1);
	sigaddset(&both, rt);
	sigemptyset(&usr2);
	sigaddset(&usr2, SIGUSR2);
	all = both;
	sigaddset(&all, SIGUSR2);
	if (sigprocmask(SIG_BLOCK, &all, NULL))
		return fail_errno("sigprocmask"), 1;
	a = signalfd(-1, &both, SFD_NONBLOCK);
	b = signalfd(-1, &usr2, SFD_CLOEXEC);
	if (a < 0 || b < 0)
		return fail_errno("signalfd"), 1;
	if (kill(getpid(), SIGUSR1) || sigqueue(getpid(), rt, val))
		return fail_errno("kill"), 1;
	test_daemon();
	test_waitsig();

	if (!(fcntl(a, F_GETFL) & O_NONBLOCK) || (fcntl(b, F_GETFL) & O_NONBLOCK) ||
	    fcntl(b, F_GETFD) != FD_CLOEXEC)
		return fail("flags not kept"), 1;
	fcntl(b, F_SETFL, O_NONBLOCK);
	if (next(b, &si) == 0 || errno != EAGAIN)
		return fail("the SIGUSR2 signalfd reads signal %u", si.ssi_signo), 1;
	if (next(a, &si) || si.ssi_signo != SIGUSR1)
		return fail("first signal: %u, want SIGUSR1", si.ssi_signo), 1;
	if (next(a, &si) || (int)si.ssi_signo != rt || si.ssi_int != 77)
		return fail("second signal: %u (value %d), want %d (77)", si.ssi_signo,
			    si.ssi_int, rt), 1;
	if (next(a, &si) == 0 || errno != EAGAIN)
		return fail("a third signal: %u", si.ssi_signo), 1;
	if (kill(getpid(), SIGUSR2) || next(b, &si) || si.ssi_signo != SIGUSR2)
		return fail("SIGUSR2 not read through its signalfd"), 1;
	if (kill(getpid(), SIGUSR2) || next(a, &si) == 0)
		return fail("the SIGUSR1 signalfd reads SIGUSR2"), 1;
	pass();
	return 0;
}
