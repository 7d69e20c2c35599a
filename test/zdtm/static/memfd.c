// SPDX-License-Identifier: GPL-2.0
/*
 * A memfd, open and mapped shared: contents, size and name survive, and
 * the fd and the mapping are still the same object.
 */
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "zdtm.h"

#define SIZE (2UL << 20)

int main(int argc, char **argv)
{
	char link[64], target[256] = "";
	uint32_t crc = 61;
	struct stat st;
	char *mem;
	int fd;

	test_init(argc, argv);
	fd = memfd_create("zdtm-memfd", 0);
	if (fd < 0 || ftruncate(fd, SIZE))
		return fail_errno("memfd_create"), 1;
	mem = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (mem == MAP_FAILED)
		return fail_errno("mmap"), 1;
	datagen(mem, SIZE, &crc);
	test_daemon();
	test_waitsig();

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	if (readlink(link, target, sizeof(target) - 1) < 0 ||
	    strcmp(target, "/memfd:zdtm-memfd (deleted)"))
		return fail("fd %d is %s", fd, target), 1;
	if (fstat(fd, &st) || st.st_size != (off_t)SIZE)
		return fail("memfd size changed"), 1;
	if (datachk(mem, SIZE, &crc))
		return fail("memfd contents changed"), 1;
	if (pwrite(fd, "Q", 1, 4096) != 1 || mem[4096] != 'Q')
		return fail("the fd and the mapping are not shared any more"), 1;
	pass();
	return 0;
}
