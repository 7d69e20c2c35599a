// SPDX-License-Identifier: GPL-2.0
/*
 * A private writable file mapping: pages written through it are COW copies
 * that must survive with their new contents while the file stays as it was.
 */
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "zdtm.h"

#define SIZE (1UL << 20)

int main(int argc, char **argv)
{
	uint32_t crc_file = 5, crc_map = 6, crc;
	static char buf[SIZE];
	char *mem;
	int fd;

	test_init(argc, argv);
	fd = open("map_private.dat", O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return fail_errno("open"), 1;
	datagen(buf, SIZE, &crc_file);
	if (write(fd, buf, SIZE) != (ssize_t)SIZE)
		return fail_errno("write"), 1;
	mem = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	if (mem == MAP_FAILED)
		return fail_errno("mmap"), 1;
	close(fd);
	/* COW the first half; the second half keeps the file's pages. */
	datagen(mem, SIZE / 2, &crc_map);
	test_daemon();
	test_waitsig();

	crc = datasum(buf + SIZE / 2, SIZE / 2);
	if (datachk(mem, SIZE / 2, &crc_map))
		return fail("COW half lost its contents"), 1;
	if (datachk(mem + SIZE / 2, SIZE / 2, &crc))
		return fail("file-backed half differs from the file"), 1;
	fd = open("map_private.dat", O_RDONLY);
	if (fd < 0 || read(fd, buf, SIZE) != (ssize_t)SIZE)
		return fail_errno("reread"), 1;
	if (datachk(buf, SIZE, &crc_file))
		return fail("the private mapping leaked into the file"), 1;
	pass();
	return 0;
}
