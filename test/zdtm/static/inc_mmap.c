// SPDX-License-Identifier: GPL-2.0
/*
 * Change k maps a new private anonymous region of k + 2 pages, where the
 * kernel puts it (so it may abut, and merge with, an older one), and fills
 * it with data of generation k.  Every region, the one mapped before the
 * first change included, must be mapped rw-p with its data.
 */
#include <sys/mman.h>
#include <unistd.h>

#include "zdtm.h"

#define MAX_REGIONS 64

struct region {
	char *addr;
	size_t len;
	uint32_t crc;
};

static struct region reg[MAX_REGIONS];
static size_t psize;

static int map_region(int k)
{
	struct region *r = &reg[k];

	r->len = (k + 2) * psize;
	r->addr = mmap(NULL, r->len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (r->addr == MAP_FAILED)
		return -1;
	r->crc = 1000 + k;
	datagen(r->addr, r->len, &r->crc);
	return 0;
}

int main(int argc, char **argv)
{
	char perms[5];
	int k, n = 0;

	test_init(argc, argv);
	psize = sysconf(_SC_PAGESIZE);
	if (map_region(0))
		return fail_errno("mmap"), 1;
	test_iter_init();
	test_daemon();

	while ((k = test_iter_wait()) > 0) {
		if (k < MAX_REGIONS) {
			if (map_region(k))
				return fail_errno("mmap %d", k), 1;
			n = k;
		}
		test_iter_ack(k);
	}

	for (k = 0; k <= n; k++) {
		struct region *r = &reg[k];

		if (vma_perms(r->addr, perms) || strcmp(perms, "rw-p") ||
		    vma_perms(r->addr + r->len - 1, perms) ||
		    strcmp(perms, "rw-p"))
			return fail("region %d at %p: not mapped rw-p", k,
				    r->addr), 1;
		if (datachk(r->addr, r->len, &r->crc))
			return fail("region %d at %p (%zu bytes): data mismatch",
				    k, r->addr, r->len), 1;
	}
	pass();
	return 0;
}
