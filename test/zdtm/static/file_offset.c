// SPDX-License-Identifier: GPL-2.0
/* A regular file open at an offset: the position survives. */
#include <fcntl.h>
#include <unistd.h>

#include "zdtm.h"

#define SIZE 20000
#define POS 4321

int main(int argc, char **argv)
{
	static char buf[SIZE], rbuf[SIZE];
	uint32_t crc = 31, crc_tail;
	int fd;

	test_init(argc, argv);
	fd = open("offset.dat", O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return fail_errno("open"), 1;
	datagen(buf, SIZE, &crc);
	if (write(fd, buf, SIZE) != SIZE || lseek(fd, POS, SEEK_SET) != POS)
		return fail_errno("write/lseek"), 1;
	crc_tail = datasum(buf + POS, SIZE - POS);
	test_daemon();
	test_waitsig();

	if (lseek(fd, 0, SEEK_CUR) != POS)
		return fail("position %ld, want %d", (long)lseek(fd, 0, SEEK_CUR),
			    POS), 1;
	if ((fcntl(fd, F_GETFL) & O_ACCMODE) != O_RDWR)
		return fail("access mode changed"), 1;
	if (read(fd, rbuf, SIZE) != SIZE - POS)
		return fail("short read from the position"), 1;
	if (datachk(rbuf, SIZE - POS, &crc_tail))
		return fail("data after the position differs"), 1;
	pass();
	return 0;
}
