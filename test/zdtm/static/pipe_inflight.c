// SPDX-License-Identifier: GPL-2.0
/* A pipe with data written before the dump and read after restore. */
#include <fcntl.h>
#include <unistd.h>

#include "zdtm.h"

#define SIZE (48UL << 10) /* fits in the default 64 KiB pipe buffer */

int main(int argc, char **argv)
{
	static char buf[SIZE], rbuf[SIZE + 1];
	uint32_t crc = 17;
	int p[2];
	ssize_t n, got = 0;

	test_init(argc, argv);
	if (pipe(p))
		return fail_errno("pipe"), 1;
	datagen(buf, SIZE, &crc);
	if (write(p[1], buf, SIZE) != (ssize_t)SIZE)
		return fail_errno("write"), 1;
	test_daemon();
	test_waitsig();

	if (fcntl(p[0], F_SETFL, O_NONBLOCK))
		return fail_errno("fcntl"), 1;
	while ((n = read(p[0], rbuf + got, sizeof(rbuf) - got)) > 0)
		got += n;
	if (got != (ssize_t)SIZE)
		return fail("read %zd bytes from the pipe, want %lu", got, SIZE), 1;
	if (datachk(rbuf, SIZE, &crc))
		return fail("pipe data mismatch"), 1;
	/* Both ends are still one pipe. */
	if (write(p[1], "x", 1) != 1 || read(p[0], rbuf, 2) != 1 || rbuf[0] != 'x')
		return fail("pipe ends are no longer connected"), 1;
	pass();
	return 0;
}
