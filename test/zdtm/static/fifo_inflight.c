// SPDX-License-Identifier: GPL-2.0
/* A named FIFO, opened for reading and writing, with data in flight. */
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "zdtm.h"

#define SIZE (32UL << 10)

int main(int argc, char **argv)
{
	static char buf[SIZE], rbuf[SIZE + 1];
	int rfd, wfd;
	uint32_t crc = 23;
	ssize_t n, got = 0;
	struct stat st;

	test_init(argc, argv);
	if (mkfifo("test.fifo", 0600))
		return fail_errno("mkfifo"), 1;
	rfd = open("test.fifo", O_RDONLY | O_NONBLOCK);
	wfd = open("test.fifo", O_WRONLY);
	if (rfd < 0 || wfd < 0)
		return fail_errno("open fifo"), 1;
	datagen(buf, SIZE, &crc);
	if (write(wfd, buf, SIZE) != (ssize_t)SIZE)
		return fail_errno("write"), 1;
	test_daemon();
	test_waitsig();

	if (fstat(rfd, &st) || !S_ISFIFO(st.st_mode))
		return fail("fd %d is not a FIFO any more", rfd), 1;
	while ((n = read(rfd, rbuf + got, sizeof(rbuf) - got)) > 0)
		got += n;
	if (got != (ssize_t)SIZE)
		return fail("read %zd bytes from the FIFO, want %lu", got, SIZE), 1;
	if (datachk(rbuf, SIZE, &crc))
		return fail("FIFO data mismatch"), 1;
	if (write(wfd, "y", 1) != 1 || read(rfd, rbuf, 2) != 1 || rbuf[0] != 'y')
		return fail("FIFO ends are no longer connected"), 1;
	pass();
	return 0;
}
