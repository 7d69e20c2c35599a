// SPDX-License-Identifier: GPL-2.0
/*
 * flock(2) locks (--file-locks): an exclusive lock with a task blocked
 * waiting for it, a shared lock on a description the parent and a child
 * share, a file both hold shared through descriptions of their own, and
 * an exclusive lock on an unlinked file.
 * After the restore each lock still belongs to its description: another
 * open of the file is refused, the owner's own fd is not; the waiter
 * gets the lock once it is released.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "zdtm.h"

/* Does /proc/locks show a task blocked on inode @ino ("->")? */
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

static int busy(const char *path, int op)
{
	int fd = open(path, O_RDONLY), ret;

	ret = flock(fd, op | LOCK_NB) ? (errno == EWOULDBLOCK ? 1 : -1) : 0;
	close(fd);
	return ret;
}

int main(int argc, char **argv)
{
	int a, b, c, u, st, sig;
	char proc[64];
	pid_t holder, waiter;
	struct stat sa;
	sigset_t set;

	test_init(argc, argv);
	a = open("lock_a", O_RDWR | O_CREAT, 0644);
	b = open("lock_b", O_RDWR | O_CREAT, 0644);
	c = open("lock_c", O_RDWR | O_CREAT, 0644);
	if (a < 0 || b < 0 || c < 0 || fstat(a, &sa))
		return fail_errno("open"), 1;
	u = open("lock_u", O_RDWR | O_CREAT, 0644);
	if (u < 0 || unlink("lock_u"))
		return fail_errno("unlinked file"), 1;
	if (flock(a, LOCK_EX) || flock(b, LOCK_SH) || flock(c, LOCK_SH) || flock(u, LOCK_EX))
		return fail_errno("flock"), 1;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigprocmask(SIG_BLOCK, &set, NULL);
	holder = fork();
	if (holder == 0) { /* shares b; its own description of c */
		int mine = open("lock_c", O_RDONLY);

		if (mine < 0 || flock(mine, LOCK_SH))
			_exit(2);
		sigwait(&set, &sig);
		_exit(0);
	}
	waiter = fork();
	if (waiter == 0) {
		int mine = open("lock_a", O_RDONLY);

		_exit(mine >= 0 && flock(mine, LOCK_EX) == 0 ? 0 : 3);
	}
	while (!has_waiter(sa.st_ino))
		usleep(1000);
	/* the holder's own lock on c: wait until c is held twice */
	for (;;) {
		int ret;

		flock(c, LOCK_UN);
		ret = busy("lock_c", LOCK_EX);
		flock(c, LOCK_SH);
		if (ret == 1)
			break;
		usleep(1000);
	}
	if (wait_in_sigwait(holder, SIGUSR1))
		return fail("the child never reached sigwait()"), 1;
	test_daemon();
	test_waitsig();

	if (busy("lock_a", LOCK_SH) != 1)
		return fail("lock_a is not held exclusively"), 1;
	if (flock(a, LOCK_EX | LOCK_NB))
		return fail_errno("lock_a is not held by its own fd"), 1;
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", u);
	if (busy(proc, LOCK_SH) != 1)
		return fail("the unlinked file is not held exclusively"), 1;
	if (busy("lock_b", LOCK_SH) != 0 || busy("lock_b", LOCK_EX) != 1)
		return fail("lock_b is not held shared"), 1;
	if (flock(c, LOCK_UN) || busy("lock_c", LOCK_EX) != 1)
		return fail("the child's shared lock on lock_c is gone"), 1;
	kill(holder, SIGUSR1);
	if (waitpid(holder, &st, 0) != holder || !WIFEXITED(st) || WEXITSTATUS(st))
		return fail("holder exited with %#x", st), 1;
	if (busy("lock_c", LOCK_EX) != 0)
		return fail("lock_c is still held after its holder exited"), 1;
	if (busy("lock_b", LOCK_EX) != 1)
		return fail("lock_b went with the child: it is the parent's too"), 1;
	if (flock(a, LOCK_UN))
		return fail_errno("unlock lock_a"), 1;
	if (waitpid(waiter, &st, 0) != waiter || !WIFEXITED(st) || WEXITSTATUS(st))
		return fail("the waiter exited with %#x", st), 1;
	pass();
	return 0;
}
