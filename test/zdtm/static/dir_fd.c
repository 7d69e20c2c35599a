// SPDX-License-Identifier: GPL-2.0
/*
 * A directory open as an fd, read part way with getdents: after the
 * restore it is the same directory at the same position (the rest of its
 * entries come next), and names resolve through it with openat().
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "zdtm.h"

#define NR 64

/* Names left to read from @fd, counted. */
static int count_rest(int fd)
{
	char buf[1024];
	long n;
	int nr = 0;

	while ((n = syscall(SYS_getdents64, fd, buf, sizeof(buf))) > 0)
		for (long off = 0; off < n;) {
			struct dirent64 *de = (void *)(buf + off);

			nr += de->d_name[0] != '.';
			off += de->d_reclen;
		}
	return n < 0 ? -1 : nr;
}

int main(int argc, char **argv)
{
	char name[32], buf[256];
	struct stat before, after;
	int dir, fd, left;
	off_t pos;

	test_init(argc, argv);
	if (mkdir("dir_fd", 0755))
		return fail_errno("mkdir"), 1;
	for (int i = 0; i < NR; i++) {
		snprintf(name, sizeof(name), "dir_fd/entry%02d", i);
		close(open(name, O_CREAT | O_WRONLY, 0644));
	}
	dir = open("dir_fd", O_RDONLY | O_DIRECTORY);
	if (dir < 0 || fstat(dir, &before))
		return fail_errno("open"), 1;
	if (syscall(SYS_getdents64, dir, buf, sizeof(buf)) <= 0)
		return fail_errno("getdents64"), 1;
	pos = lseek(dir, 0, SEEK_CUR);
	left = count_rest(dir); /* then back to where it was */
	if (left <= 0 || lseek(dir, pos, SEEK_SET) != pos)
		return fail("can't read on and seek back (%d left)", left), 1;
	test_daemon();
	test_waitsig();

	if (fstat(dir, &after) || after.st_ino != before.st_ino || after.st_dev != before.st_dev)
		return fail("another directory after the restore"), 1;
	if (lseek(dir, 0, SEEK_CUR) != pos)
		return fail("position %lld, want %lld", (long long)lseek(dir, 0, SEEK_CUR),
			    (long long)pos), 1;
	if (count_rest(dir) != left)
		return fail("not the same entries left to read"), 1;
	fd = openat(dir, "entry07", O_RDONLY);
	if (fd < 0)
		return fail_errno("openat"), 1;
	close(fd);
	pass();
	return 0;
}
