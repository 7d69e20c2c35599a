// SPDX-License-Identifier: GPL-2.0
/*
 * A task whose root directory is not / (chroot into a directory of the
 * test's dir, its cwd below that root): after the restore "/" is still
 * that directory, paths resolve inside it, ".." stops at it, and the
 * cwd is the same. A child does it, so the test's own files (opened by
 * path at the end) stay reachable.
 */
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "zdtm.h"

static int same(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

/* In the chroot: the checks after the restore, 0 if all hold. */
static int check(const struct stat *root, const struct stat *sub)
{
	struct stat st;
	char buf[16] = "", cwd[PATH_MAX];
	int fd;

	if (stat("/", &st) || !same(&st, root) || stat("/../..", &st) || !same(&st, root))
		return 1;
	if (!getcwd(cwd, sizeof(cwd)) || strcmp(cwd, "/sub") || stat(".", &st) || !same(&st, sub))
		return 2;
	fd = open("/marker", O_RDONLY);
	if (fd < 0 || read(fd, buf, sizeof(buf)) != 6 || memcmp(buf, "inside", 6))
		return 3;
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	struct stat root, sub;
	int go[2], ready[2], st, fd;
	char c;
	pid_t kid;

	test_init(argc, argv);
	if (mkdir("root.d", 0755) || mkdir("root.d/sub", 0755) || stat("root.d", &root) ||
	    stat("root.d/sub", &sub) || pipe(go) || pipe(ready))
		return fail_errno("setup"), 1;
	fd = open("root.d/marker", O_WRONLY | O_CREAT, 0644);
	if (fd < 0 || write(fd, "inside", 6) != 6 || close(fd))
		return fail_errno("marker"), 1;
	kid = fork();
	if (kid < 0)
		return fail_errno("fork"), 1;
	if (!kid) {
		close(go[1]);
		close(ready[0]);
		if (chroot("root.d") || chdir("/sub"))
			_exit(10);
		close(ready[1]); /* its fds and root are final: the parent may go on */
		if (read(go[0], &c, 1) != 1) /* the parent's word, after the restore */
			_exit(11);
		_exit(check(&root, &sub));
	}
	close(go[0]);
	close(ready[1]);
	/*
	 * Wait for the child's EOF on ready: until then it may still hold
	 * the pipes' other ends, and the state compared before and after
	 * the restore would depend on when the dump came.
	 */
	if (read(ready[0], &c, 1) != 0)
		return fail_errno("child setup"), 1;
	close(ready[0]);
	test_daemon();
	test_waitsig();

	if (write(go[1], "c", 1) != 1 || waitpid(kid, &st, 0) != kid)
		return fail_errno("child"), 1;
	if (!WIFEXITED(st) || WEXITSTATUS(st))
		return fail("the chrooted child's check failed (status %#x)", st), 1;
	pass();
	return 0;
}
