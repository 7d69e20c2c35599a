// SPDX-License-Identifier: GPL-2.0
/*
 * dup()ed fds share one open file description: after restore moving the
 * offset through one fd moves it for the other, and their fd flags differ.
 */
#include <fcntl.h>
#include <unistd.h>

#include "zdtm.h"

int main(int argc, char **argv)
{
	int fd, fd2;

	test_init(argc, argv);
	fd = open("dup.dat", O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || ftruncate(fd, 65536) || lseek(fd, 1000, SEEK_SET) != 1000)
		return fail_errno("open"), 1;
	fd2 = fcntl(fd, F_DUPFD_CLOEXEC, 20);
	if (fd2 < 0)
		return fail_errno("dup"), 1;
	test_daemon();
	test_waitsig();

	if (lseek(fd2, 0, SEEK_CUR) != 1000)
		return fail("dup'ed offset %ld, want 1000",
			    (long)lseek(fd2, 0, SEEK_CUR)), 1;
	if (lseek(fd, 3000, SEEK_SET) != 3000 || lseek(fd2, 0, SEEK_CUR) != 3000)
		return fail("the fds no longer share a file description"), 1;
	if (fcntl(fd, F_GETFD) != 0 || fcntl(fd2, F_GETFD) != FD_CLOEXEC)
		return fail("FD_CLOEXEC flags changed"), 1;
	pass();
	return 0;
}
