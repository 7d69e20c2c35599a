// SPDX-License-Identifier: GPL-2.0
/*
 * A child running as another user (65534) with lowered limits: its uids,
 * gids and limits survive. Dumping it reads its limits without prlimit(),
 * which needs CAP_SYS_RESOURCE for a task of another uid.
 */
#include <grp.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "zdtm.h"

#define NOBODY 65534

static int child(int ready, int go, int result)
{
	struct rlimit lim = { 211, 401 }, cur;
	char c = 'R';

	if (setrlimit(RLIMIT_NOFILE, &lim) || setgroups(0, NULL) ||
	    setresgid(NOBODY, NOBODY, NOBODY) || setresuid(NOBODY, NOBODY, NOBODY))
		c = 'E';
	if (write(ready, &c, 1) != 1 || read(go, &c, 1) != 1)
		return 1;
	c = 'P';
	if (getuid() != NOBODY || geteuid() != NOBODY || getgid() != NOBODY ||
	    getegid() != NOBODY || getgroups(0, NULL) != 0)
		c = 'U';
	else if (getrlimit(RLIMIT_NOFILE, &cur) || cur.rlim_cur != 211 || cur.rlim_max != 401)
		c = 'L';
	return write(result, &c, 1) != 1;
}

int main(int argc, char **argv)
{
	int ready[2], go[2], result[2], status;
	pid_t pid;
	char c;

	test_init(argc, argv);
	if (pipe(ready) || pipe(go) || pipe(result))
		return fail_errno("pipe"), 1;
	pid = fork();
	if (pid < 0)
		return fail_errno("fork"), 1;
	if (pid == 0)
		_exit(child(ready[1], go[0], result[1]));
	if (read(ready[0], &c, 1) != 1 || c != 'R')
		return fail("child could not become uid %d", NOBODY), 1;
	test_daemon();
	test_waitsig();

	if (write(go[1], "g", 1) != 1 || read(result[0], &c, 1) != 1)
		return fail_errno("talking to the child"), 1;
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status))
		return fail("child exited with status 0x%x", status), 1;
	if (c == 'U')
		return fail("child's uids, gids or groups changed"), 1;
	if (c == 'L')
		return fail("child's RLIMIT_NOFILE is not 211/401"), 1;
	if (c != 'P')
		return fail("child said %c", c), 1;
	pass();
	return 0;
}
