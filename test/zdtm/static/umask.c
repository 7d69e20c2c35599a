// SPDX-License-Identifier: GPL-2.0
/* The file mode creation mask survives. */
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "zdtm.h"

#define MASK 0027

int main(int argc, char **argv)
{
	struct stat st;
	mode_t cur;
	int fd;

	test_init(argc, argv);
	umask(MASK);
	test_daemon();
	test_waitsig();

	cur = umask(0);
	if (cur != MASK)
		return fail("umask %04o, want %04o", cur, MASK), 1;
	umask(cur);
	fd = open("umask.dat", O_CREAT | O_WRONLY, 0777);
	if (fd < 0 || fstat(fd, &st))
		return fail_errno("create"), 1;
	if ((st.st_mode & 0777) != (0777 & ~MASK))
		return fail("new file mode %04o", st.st_mode & 0777), 1;
	pass();
	return 0;
}
