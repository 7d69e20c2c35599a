// SPDX-License-Identifier: GPL-2.0
/* The working directory survives (a nested directory of the test's dir). */
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include "zdtm.h"

int main(int argc, char **argv)
{
	char want[PATH_MAX], cur[PATH_MAX];
	struct stat st_want, st_cur;

	test_init(argc, argv);
	if (mkdir("cwd.d", 0755) || mkdir("cwd.d/sub dir", 0700) ||
	    chdir("cwd.d/sub dir") || !getcwd(want, sizeof(want)) ||
	    stat(".", &st_want))
		return fail_errno("setup"), 1;
	test_daemon();
	test_waitsig();

	if (!getcwd(cur, sizeof(cur)) || stat(".", &st_cur))
		return fail_errno("getcwd"), 1;
	if (strcmp(cur, want))
		return fail("cwd %s, want %s", cur, want), 1;
	if (st_cur.st_ino != st_want.st_ino || st_cur.st_dev != st_want.st_dev)
		return fail("cwd is another directory of the same name"), 1;
	pass();
	return 0;
}
