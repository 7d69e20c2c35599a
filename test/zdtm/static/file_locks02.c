// SPDX-License-Identifier: GPL-2.0
/*
 * Open file description (OFD) locks (--file-locks): a write lock on
 * bytes 0-9 of a description the parent shares with a child, and a read
 * lock on 20-29 of a second description. After the restore both ranges
 * are held, each by its own description: it may take its range again,
 * the other description may not.
 */
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "zdtm.h"

static int ofd(int fd, int cmd, short type, off_t start, off_t len, struct flock *out)
{
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len };
	int ret = fcntl(fd, cmd, &fl);

	if (out)
		*out = fl;
	return ret;
}

int main(int argc, char **argv)
{
	int shared, own, probe, st, sig;
	struct flock fl;
	sigset_t set;
	pid_t kid;

	test_init(argc, argv);
	shared = open("ofd_lock", O_RDWR | O_CREAT, 0644);
	own = open("ofd_lock", O_RDWR);
	if (shared < 0 || own < 0)
		return fail_errno("open"), 1;
	if (ofd(shared, F_OFD_SETLK, F_WRLCK, 0, 10, NULL) ||
	    ofd(own, F_OFD_SETLK, F_RDLCK, 20, 10, NULL))
		return fail_errno("F_OFD_SETLK"), 1;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigprocmask(SIG_BLOCK, &set, NULL);
	kid = fork();
	if (kid == 0) {
		sigwait(&set, &sig);
		/* the shared description's lock is the child's too */
		_exit(ofd(shared, F_OFD_SETLK, F_WRLCK, 0, 10, NULL) ? 2 : 0);
	}
	if (wait_in_sigwait(kid, SIGUSR1))
		return fail("the child never reached sigwait()"), 1;
	test_daemon();
	test_waitsig();

	probe = open("ofd_lock", O_RDWR);
	if (probe < 0)
		return fail_errno("open"), 1;
	if (ofd(probe, F_OFD_GETLK, F_WRLCK, 5, 1, &fl) || fl.l_type != F_WRLCK ||
	    fl.l_start != 0 || fl.l_len != 10)
		return fail("bytes 0-9: type %d range %ld+%ld", fl.l_type, (long)fl.l_start,
			    (long)fl.l_len), 1;
	if (ofd(probe, F_OFD_GETLK, F_WRLCK, 25, 1, &fl) || fl.l_type != F_RDLCK ||
	    fl.l_start != 20 || fl.l_len != 10)
		return fail("bytes 20-29: type %d range %ld+%ld", fl.l_type, (long)fl.l_start,
			    (long)fl.l_len), 1;
	if (ofd(own, F_OFD_SETLK, F_WRLCK, 0, 10, NULL) == 0 || errno != EAGAIN)
		return fail("the second description took the first one's range"), 1;
	if (ofd(shared, F_OFD_SETLK, F_WRLCK, 20, 10, NULL) == 0 || errno != EAGAIN)
		return fail("the first description took the second one's range"), 1;
	if (ofd(own, F_OFD_SETLK, F_WRLCK, 20, 10, NULL))
		return fail_errno("the second description can't upgrade its own lock"), 1;
	kill(kid, SIGUSR1);
	if (waitpid(kid, &st, 0) != kid || !WIFEXITED(st) || WEXITSTATUS(st))
		return fail("child exited with %#x", st), 1;
	if (ofd(shared, F_OFD_SETLK, F_WRLCK, 0, 10, NULL))
		return fail_errno("the first description can't take its own range"), 1;
	pass();
	return 0;
}
