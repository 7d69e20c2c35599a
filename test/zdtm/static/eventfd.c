// SPDX-License-Identifier: GPL-2.0
/*
 * eventfds: a counter above 32 bits (non-blocking), a semaphore eventfd
 * that hands out its count one by one, and one eventfd shared with a
 * child, which adds to it after the restore.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "zdtm.h"

#define BIG (5ULL << 33 | 7)

static int get(int fd, uint64_t *v)
{
	return read(fd, v, sizeof(*v)) == sizeof(*v) ? 0 : -1;
}

int main(int argc, char **argv)
{
	uint64_t v = BIG, one = 1;
	int big, sem, shared, st, sig;
	sigset_t set, old;
	pid_t kid;

	test_init(argc, argv);
	big = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	sem = eventfd(3, EFD_SEMAPHORE);
	shared = eventfd(0, 0);
	if (big < 0 || sem < 0 || shared < 0 || write(big, &v, sizeof(v)) != sizeof(v))
		return fail_errno("eventfd"), 1;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigprocmask(SIG_BLOCK, &set, &old);
	kid = fork();
	if (kid < 0)
		return fail_errno("fork"), 1;
	if (kid == 0) {
		sigwait(&set, &sig);
		_exit(write(shared, &one, sizeof(one)) == sizeof(one) ? 0 : 1);
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (wait_in_sigwait(kid, SIGUSR1))
		return fail("the child never reached sigwait()"), 1;
	test_daemon();
	test_waitsig();

	if (!(fcntl(big, F_GETFL) & O_NONBLOCK) || (fcntl(sem, F_GETFL) & O_NONBLOCK))
		return fail("O_NONBLOCK not kept"), 1;
	if (get(big, &v) || v != BIG)
		return fail("counter %#llx, want %#llx", (unsigned long long)v, BIG), 1;
	if (get(big, &v) == 0 || errno != EAGAIN)
		return fail("the counter was not reset by the read"), 1;
	fcntl(sem, F_SETFL, O_NONBLOCK);
	for (int i = 0; i < 3; i++)
		if (get(sem, &v) || v != 1)
			return fail("semaphore read %d gave %llu", i, (unsigned long long)v), 1;
	if (get(sem, &v) == 0 || errno != EAGAIN)
		return fail("semaphore had more than 3"), 1;
	kill(kid, SIGUSR1);
	if (waitpid(kid, &st, 0) != kid || !WIFEXITED(st) || WEXITSTATUS(st))
		return fail("child failed"), 1;
	if (get(shared, &v) || v != 1)
		return fail("the child's eventfd is not ours"), 1;
	pass();
	return 0;
}
