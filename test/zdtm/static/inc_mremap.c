// SPDX-License-Identifier: GPL-2.0
/*
 * A filled region of 16 pages.  Change k moves it with
 * mremap(MREMAP_MAYMOVE | MREMAP_FIXED) to a new address and grows it by
 * k pages, which it fills with data of generation k.  The region must hold
 * all its data at its last address, the old addresses must be unmapped.
 */
#include <sys/mman.h>
#include <unistd.h>

#include "zdtm.h"

#define INIT_PAGES 16
#define MAX_CHANGES 32

static size_t psize;

/* Is any of [lo, hi) outside [a, b) mapped? */
static int mapped_outside(char *lo, char *hi, char *a, char *b)
{
	if (lo < a && vma_mapped(lo, (hi < a ? hi : a) - lo))
		return 1;
	if (lo < b)
		lo = b;
	return hi > lo && vma_mapped(lo, hi - lo);
}

int main(int argc, char **argv)
{
	uint32_t crc[MAX_CHANGES + 1];
	char *old[MAX_CHANGES + 1], *addr, *dst, perms[5];
	size_t len, tail[MAX_CHANGES + 1], off;
	int k, n = 0;

	test_init(argc, argv);
	psize = sysconf(_SC_PAGESIZE);
	len = INIT_PAGES * psize;
	addr = mmap(NULL, len, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (addr == MAP_FAILED)
		return fail_errno("mmap"), 1;
	crc[0] = 0;
	tail[0] = len;
	datagen(addr, len, &crc[0]);
	test_iter_init();
	test_daemon();

	while ((k = test_iter_wait()) > 0) {
		if (k <= MAX_CHANGES) {
			tail[k] = k * psize;
			/* A free range for the grown region, then move there. */
			dst = mmap(NULL, len + tail[k], PROT_NONE,
				   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			if (dst == MAP_FAILED)
				return fail_errno("mmap target %d", k), 1;
			if (mremap(addr, len, len + tail[k],
				   MREMAP_MAYMOVE | MREMAP_FIXED, dst) != dst)
				return fail_errno("mremap %d", k), 1;
			old[k] = addr;
			addr = dst;
			crc[k] = 100 + k;
			datagen(addr + len, tail[k], &crc[k]);
			len += tail[k];
			n = k;
		}
		test_iter_ack(k);
	}

	/* Old ranges are unmapped, except where the last move reused them. */
	for (k = 1, off = 0; k <= n; off += tail[k - 1], k++)
		if (mapped_outside(old[k], old[k] + off + tail[k - 1], addr,
				   addr + len))
			return fail("old range at %p of move %d is mapped",
				    old[k], k), 1;
	if (vma_perms(addr, perms) || strcmp(perms, "rw-p") ||
	    vma_perms(addr + len - 1, perms) || strcmp(perms, "rw-p"))
		return fail("region at %p not mapped rw-p", addr), 1;
	for (k = 0, off = 0; k <= n; off += tail[k], k++)
		if (datachk(addr + off, tail[k], &crc[k]))
			return fail("part %d (+%zu, %zu bytes) after %d moves: "
				    "data mismatch", k, off, tail[k], n), 1;
	pass();
	return 0;
}
