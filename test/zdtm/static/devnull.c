// SPDX-License-Identifier: GPL-2.0
/* Character devices: /dev/null and /dev/zero fds keep device and flags. */
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "zdtm.h"

#define NULL_FD 10
#define ZERO_FD 11

int main(int argc, char **argv)
{
	char buf[64] = "not zero";
	struct stat st;
	int fd;

	test_init(argc, argv);
	fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (fd < 0 || dup2(fd, NULL_FD) < 0 || close(fd) ||
	    fcntl(NULL_FD, F_SETFD, FD_CLOEXEC))
		return fail_errno("/dev/null"), 1;
	fd = open("/dev/zero", O_RDONLY | O_NONBLOCK);
	if (fd < 0 || dup2(fd, ZERO_FD) < 0 || close(fd))
		return fail_errno("/dev/zero"), 1;
	test_daemon();
	test_waitsig();

	if (fstat(NULL_FD, &st) || !S_ISCHR(st.st_mode) || st.st_rdev != makedev(1, 3))
		return fail("fd %d is not /dev/null", NULL_FD), 1;
	if ((fcntl(NULL_FD, F_GETFL) & O_ACCMODE) != O_RDWR ||
	    fcntl(NULL_FD, F_GETFD) != FD_CLOEXEC)
		return fail("/dev/null flags changed"), 1;
	if (write(NULL_FD, buf, 8) != 8 || read(NULL_FD, buf, 8) != 0)
		return fail("/dev/null misbehaves"), 1;
	if (fstat(ZERO_FD, &st) || st.st_rdev != makedev(1, 5))
		return fail("fd %d is not /dev/zero", ZERO_FD), 1;
	if ((fcntl(ZERO_FD, F_GETFL) & (O_ACCMODE | O_NONBLOCK)) != (O_RDONLY | O_NONBLOCK))
		return fail("/dev/zero flags changed"), 1;
	if (read(ZERO_FD, buf, 8) != 8 || buf[0] || buf[7])
		return fail("/dev/zero misbehaves"), 1;
	pass();
	return 0;
}
