// SPDX-License-Identifier: GPL-2.0
/*
 * O_PATH fds: on a regular file, on a directory, on a symlink itself
 * (O_PATH | O_NOFOLLOW), on a FIFO and on a unix socket's file. After the
 * restore each is still O_PATH on the same inode: the file reads back
 * through /proc/self/fd, the directory resolves a name with openat(), the
 * symlink reads with readlinkat().
 */
#include <fcntl.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "zdtm.h"

static int check(int fd, const struct stat *want, mode_t type, const char *what)
{
	struct stat st;
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || !(fl & O_PATH))
		return fail("%s: not O_PATH (flags %#o)", what, fl), -1;
	if (fstatat(fd, "", &st, AT_EMPTY_PATH))
		return fail_errno("%s: fstatat", what), -1;
	if (st.st_ino != want->st_ino || st.st_dev != want->st_dev || (st.st_mode & S_IFMT) != type)
		return fail("%s: another inode or type", what), -1;
	return 0;
}

int main(int argc, char **argv)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX, .sun_path = "opath_sock" };
	struct stat sf, sd, sl, sp, ss;
	int p, s;
	char buf[64], proc[64];
	int f, d, l, fd;
	ssize_t n;

	test_init(argc, argv);
	fd = open("opath_file", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, "contents", 8) != 8 || close(fd))
		return fail_errno("file"), 1;
	if (mkdir("opath_dir", 0755) || close(open("opath_dir/inside", O_CREAT | O_WRONLY, 0644)) ||
	    symlink("opath_file", "opath_link"))
		return fail_errno("dir/link"), 1;
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (mkfifo("opath_fifo", 0600) || fd < 0 || bind(fd, (void *)&sun, sizeof(sun)) || close(fd))
		return fail_errno("fifo/socket"), 1;
	p = open("opath_fifo", O_PATH);
	s = open("opath_sock", O_PATH);
	if (p < 0 || s < 0 || stat("opath_fifo", &sp) || stat("opath_sock", &ss))
		return fail_errno("O_PATH fifo/socket"), 1;
	f = open("opath_file", O_PATH);
	d = open("opath_dir", O_PATH | O_DIRECTORY);
	l = open("opath_link", O_PATH | O_NOFOLLOW);
	if (f < 0 || d < 0 || l < 0 || stat("opath_file", &sf) || stat("opath_dir", &sd) ||
	    lstat("opath_link", &sl))
		return fail_errno("O_PATH open"), 1;
	test_daemon();
	test_waitsig();

	if (check(f, &sf, S_IFREG, "file") || check(d, &sd, S_IFDIR, "dir") ||
	    check(l, &sl, S_IFLNK, "symlink") || check(p, &sp, S_IFIFO, "fifo") ||
	    check(s, &ss, S_IFSOCK, "socket"))
		return 1;
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", f);
	fd = open(proc, O_RDONLY);
	if (fd < 0 || read(fd, buf, sizeof(buf)) != 8 || memcmp(buf, "contents", 8))
		return fail("the file does not read back through its O_PATH fd"), 1;
	close(fd);
	fd = openat(d, "inside", O_RDONLY);
	if (fd < 0)
		return fail_errno("openat through the directory"), 1;
	close(fd);
	n = readlinkat(l, "", buf, sizeof(buf));
	if (n != 10 || memcmp(buf, "opath_file", 10))
		return fail("the symlink reads %zd bytes", n), 1;
	pass();
	return 0;
}
