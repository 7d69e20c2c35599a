// SPDX-License-Identifier: MIT
/*
 * A task holding shared memory, for test_pserver_shmem.py to dump:
 *   - ANON_PAGES pages of MAP_SHARED|MAP_ANONYMOUS memory, pages 0..599
 *     and 700 written (600 pages make two 512-page image entries), the rest
 *     never touched: holes in the object;
 *   - a memfd of MEMFD_PAGES pages, pages 0 and 1 written with pwrite and
 *     page 6 through a shared mapping of it, the rest holes.
 * Word w of page p of object t (1: anonymous, 2: memfd) holds
 * t << 48 | p << 16 | w, so the test knows every byte. Prints
 * "ready ANON_ADDR MEMFD_FD" and waits to be dumped (and killed).
 */
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#define PAGE	    4096
#define ANON_PAGES  1024
#define MEMFD_PAGES 12

static void fill(uint64_t *page, uint64_t obj, uint64_t nr)
{
	for (uint64_t w = 0; w < PAGE / 8; w++)
		page[w] = obj << 48 | nr << 16 | w;
}

int main(void)
{
	uint64_t buf[PAGE / 8];
	char *anon, *mfd_map;
	int fd;

	anon = mmap(NULL, ANON_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1,
		    0);
	if (anon == MAP_FAILED)
		return perror("mmap"), 1;
	for (int p = 0; p < 600; p++)
		fill((uint64_t *)(anon + p * PAGE), 1, p);
	fill((uint64_t *)(anon + 700 * PAGE), 1, 700);

	fd = memfd_create("ps-shm-holder", 0);
	if (fd < 0 || ftruncate(fd, MEMFD_PAGES * PAGE))
		return perror("memfd"), 1;
	for (int p = 0; p < 2; p++) {
		fill(buf, 2, p);
		if (pwrite(fd, buf, PAGE, p * PAGE) != PAGE)
			return perror("pwrite"), 1;
	}
	mfd_map = mmap(NULL, MEMFD_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (mfd_map == MAP_FAILED)
		return perror("mmap memfd"), 1;
	fill((uint64_t *)(mfd_map + 6 * PAGE), 2, 6);

	printf("ready %lx %d\n", (unsigned long)anon, fd);
	fflush(stdout);
	for (;;)
		pause();
}
