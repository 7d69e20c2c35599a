// SPDX-License-Identifier: GPL-2.0
/*
 * A 3-level tree: test -> child -> grandchild, plus a zombie child of the
 * test that exited with status 42 and is reaped only after restore.
 */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "zdtm.h"

#define ZOMBIE_STATUS 42

/* Wait for SIGTERM, check the parent, stop the own child (if any). */
static int middle(pid_t parent, pid_t child)
{
	int status;

	test_waitsig();
	if (getppid() != parent)
		return 1;
	if (child <= 0)
		return 0;
	kill(child, SIGTERM);
	if (waitpid(child, &status, 0) != child || !WIFEXITED(status))
		return 2;
	return WEXITSTATUS(status) ? 3 : 0;
}

int main(int argc, char **argv)
{
	pid_t root, child, zombie;
	int status, ready[2];
	siginfo_t si;
	char c;

	test_init(argc, argv);
	root = getpid();
	if (pipe(ready))
		return fail_errno("pipe"), 1;
	child = fork();
	if (child == 0) {
		pid_t me = getpid(), grandchild;

		close(ready[0]);
		grandchild = fork();
		if (grandchild == 0) {
			close(ready[1]);
			_exit(middle(me, 0));
		}
		close(ready[1]); /* the grandchild exists: the tree is complete */
		_exit(middle(root, grandchild));
	}
	close(ready[1]);
	zombie = fork();
	if (zombie == 0)
		_exit(ZOMBIE_STATUS);
	if (child < 0 || zombie < 0)
		return fail_errno("fork"), 1;
	/* EOF once the child has forked the grandchild and both closed ready[1] */
	if (read(ready[0], &c, 1) != 0)
		return fail("child setup"), 1;
	close(ready[0]);
	/* Wait until it is a zombie, without reaping it. */
	if (waitid(P_PID, zombie, &si, WEXITED | WNOWAIT))
		return fail_errno("waitid"), 1;
	test_daemon();
	test_waitsig();

	if (waitpid(zombie, &status, 0) != zombie)
		return fail_errno("reap zombie %d", zombie), 1;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != ZOMBIE_STATUS)
		return fail("zombie status %#x, want exit %d", status,
			    ZOMBIE_STATUS), 1;
	kill(child, SIGTERM);
	if (waitpid(child, &status, 0) != child)
		return fail_errno("waitpid child"), 1;
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		return fail("subtree failed: status %#x", status), 1;
	pass();
	return 0;
}
