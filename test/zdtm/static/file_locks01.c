// SPDX-License-Identifier: GPL-2.0
/*
 * POSIX record locks (--file-locks): the parent's write lock on bytes
 * 0-99 and read lock from 200 to the end, a child's read lock on 100-149
 * through the fd it inherited, and a second child blocked in F_SETLKW on
 * the parent's range. After the restore each range is held by the same
 * task with the same type (seen through F_OFD_GETLK from a new open);
 * the waiter gets its lock once the parent releases.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "zdtm.h"

static int has_waiter(ino_t ino)
{
	char line[256], key[32];
	FILE *f = fopen("/proc/locks", "r");
	int found = 0;

	if (!f)
		return 0;
	snprintf(key, sizeof(key), ":%lu ", (unsigned long)ino);
	while (!found && fgets(line, sizeof(line), f))
		found = strstr(line, "->") && strstr(line, key);
	fclose(f);
	return found;
}

static int setlk(int fd, int cmd, short type, off_t start, off_t len)
{
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len };

	return fcntl(fd, cmd, &fl);
}

/* Who holds byte @at against a writer: 0 if it is free, else checks @fl. */
static int holder(int probe, off_t at, struct flock *fl)
{
	*fl = (struct flock){ .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = at, .l_len = 1 };
	return fcntl(probe, F_OFD_GETLK, fl);
}

static int expect(int probe, off_t at, short type, pid_t pid, off_t start, off_t len)
{
	struct flock fl;

	if (holder(probe, at, &fl))
		return fail_errno("F_OFD_GETLK"), -1;
	if (fl.l_type != type || (type != F_UNLCK && (fl.l_pid != pid || fl.l_start != start ||
						      fl.l_len != len))) {
		fail("byte %ld: type %d pid %d range %ld+%ld, want type %d pid %d range %ld+%ld",
		     (long)at, fl.l_type, fl.l_pid, (long)fl.l_start, (long)fl.l_len, type, pid,
		     (long)start, (long)len);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	int fd, probe, st, sig, ready[2];
	pid_t kid, waiter;
	struct stat sb;
	sigset_t set;
	char c;

	test_init(argc, argv);
	fd = open("posix_lock", O_RDWR | O_CREAT, 0644);
	if (fd < 0 || fstat(fd, &sb) || pipe(ready))
		return fail_errno("open"), 1;
	if (setlk(fd, F_SETLK, F_WRLCK, 0, 100) || setlk(fd, F_SETLK, F_RDLCK, 200, 0))
		return fail_errno("F_SETLK"), 1;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigprocmask(SIG_BLOCK, &set, NULL);
	kid = fork();
	if (kid == 0) {
		if (setlk(fd, F_SETLK, F_RDLCK, 100, 50))
			_exit(2);
		close(ready[0]);
		close(ready[1]);
		sigwait(&set, &sig);
		_exit(0);
	}
	close(ready[1]);
	if (read(ready[0], &c, 1) != 0)
		return fail("child not ready"), 1;
	close(ready[0]);
	waiter = fork();
	if (waiter == 0)
		_exit(setlk(fd, F_SETLKW, F_WRLCK, 0, 10) == 0 ? 0 : 3);
	while (!has_waiter(sb.st_ino))
		usleep(1000);
	if (wait_in_sigwait(kid, SIGUSR1))
		return fail("the child never reached sigwait()"), 1;
	test_daemon();
	test_waitsig();

	probe = open("posix_lock", O_RDWR);
	if (probe < 0)
		return fail_errno("open"), 1;
	if (expect(probe, 0, F_WRLCK, getpid(), 0, 100) ||
	    expect(probe, 120, F_RDLCK, kid, 100, 50) ||
	    expect(probe, 160, F_UNLCK, 0, 0, 0) ||
	    expect(probe, 1 << 20, F_RDLCK, getpid(), 200, 0))
		return 1;
	kill(kid, SIGUSR1);
	if (waitpid(kid, &st, 0) != kid || !WIFEXITED(st) || WEXITSTATUS(st))
		return fail("child exited with %#x", st), 1;
	if (setlk(fd, F_SETLK, F_UNLCK, 0, 100))
		return fail_errno("unlock"), 1;
	if (waitpid(waiter, &st, 0) != waiter || !WIFEXITED(st) || WEXITSTATUS(st))
		return fail("the waiter exited with %#x", st), 1;
	pass();
	return 0;
}
