// SPDX-License-Identifier: GPL-2.0
/*
 * A shared file mapping: after restore the mapping and the file agree,
 * and a write through the mapping still reaches the file.
 */
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "zdtm.h"

#define SIZE (1UL << 20)

int main(int argc, char **argv)
{
	static char buf[SIZE];
	uint32_t crc = 11;
	char *mem;
	int fd;

	test_init(argc, argv);
	fd = open("map_shared.dat", O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || ftruncate(fd, SIZE))
		return fail_errno("open"), 1;
	mem = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (mem == MAP_FAILED)
		return fail_errno("mmap"), 1;
	close(fd);
	datagen(mem, SIZE, &crc); /* dirty page-cache pages, not yet synced */
	test_daemon();
	test_waitsig();

	if (datachk(mem, SIZE, &crc))
		return fail("mapping contents changed"), 1;
	fd = open("map_shared.dat", O_RDONLY);
	if (fd < 0 || pread(fd, buf, SIZE, 0) != (ssize_t)SIZE)
		return fail_errno("read file"), 1;
	if (memcmp(buf, mem, SIZE))
		return fail("file and mapping disagree"), 1;
	mem[12345] ^= 0x5a;
	if (pread(fd, buf, SIZE, 0) != (ssize_t)SIZE || buf[12345] != mem[12345])
		return fail("mapping is no longer shared with the file"), 1;
	pass();
	return 0;
}
