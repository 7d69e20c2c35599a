// SPDX-License-Identifier: GPL-2.0
/*
 * Sessions and process groups: the test leads its session; a child leads
 * its own process group, and a grandchild joins that group.
 */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "zdtm.h"

static int check(pid_t sid, pid_t pgid)
{
	test_waitsig();
	return getsid(0) == sid && getpgid(0) == pgid ? 0 : 1;
}

int main(int argc, char **argv)
{
	pid_t sid, child, gc = -1;
	int status, ret = 0;
	int p[2];

	test_init(argc, argv);
	sid = getpid();
	if (pipe(p))
		return fail_errno("pipe"), 1;
	child = fork();
	if (child == 0) {
		setpgid(0, 0);
		gc = fork();
		if (gc == 0) {
			close(p[0]);
			close(p[1]);
			_exit(check(sid, getppid()));
		}
		close(p[0]);
		close(p[1]); /* tell the parent: group is set up */
		ret = check(sid, getpid());
		kill(gc, SIGTERM);
		if (waitpid(gc, &status, 0) != gc || status)
			ret |= 2;
		_exit(ret);
	}
	close(p[1]);
	if (child < 0 || read(p[0], &status, 1) != 0)
		return fail("child setup"), 1;
	close(p[0]);
	test_daemon();
	test_waitsig();

	if (getsid(0) != sid || getpgid(0) != sid)
		return fail("root sid/pgid changed"), 1;
	if (getpgid(child) != child)
		return fail("child pgid %d, want %d", getpgid(child), child), 1;
	kill(child, SIGTERM);
	if (waitpid(child, &status, 0) != child)
		return fail_errno("waitpid"), 1;
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		return fail("child subtree failed: %#x", status), 1;
	pass();
	return 0;
}
