// SPDX-License-Identifier: GPL-2.0
/* An O_APPEND file: the flag survives, so writes still go to the end. */
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "zdtm.h"

#define SIZE 10000

int main(int argc, char **argv)
{
	static char buf[SIZE], rbuf[2 * SIZE];
	uint32_t crc = 37, crc2 = 38;
	struct stat st;
	int fd;

	test_init(argc, argv);
	fd = open("append.dat", O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
	if (fd < 0)
		return fail_errno("open"), 1;
	datagen(buf, SIZE, &crc);
	if (write(fd, buf, SIZE) != SIZE)
		return fail_errno("write"), 1;
	if (lseek(fd, 100, SEEK_SET) != 100) /* appends ignore the position */
		return fail_errno("lseek"), 1;
	test_daemon();
	test_waitsig();

	if (!(fcntl(fd, F_GETFL) & O_APPEND))
		return fail("O_APPEND lost"), 1;
	if (lseek(fd, 0, SEEK_CUR) != 100)
		return fail("position %ld, want 100", (long)lseek(fd, 0, SEEK_CUR)), 1;
	datagen(buf, SIZE, &crc2);
	if (write(fd, buf, SIZE) != SIZE || fstat(fd, &st))
		return fail_errno("write after restore"), 1;
	if (st.st_size != 2 * SIZE)
		return fail("file size %ld, want %d", (long)st.st_size, 2 * SIZE), 1;
	close(fd);
	fd = open("append.dat", O_RDONLY);
	if (fd < 0 || read(fd, rbuf, 2 * SIZE) != 2 * SIZE)
		return fail_errno("reread"), 1;
	if (datachk(rbuf, SIZE, &crc) || datachk(rbuf + SIZE, SIZE, &crc2))
		return fail("file contents differ"), 1;
	pass();
	return 0;
}
