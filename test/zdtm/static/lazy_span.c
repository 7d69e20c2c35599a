// SPDX-License-Identifier: GPL-2.0
/*
 * One run of pages cut into three VMAs after a lazy restore, with no
 * event the lazy daemon sees: mprotect() splits a registered area
 * without a userfaultfd event. The first fault makes the daemon copy the
 * faulting page and then the rest of the run, a span over all three
 * VMAs, which the kernel refuses whole (ENOENT); every page of the run
 * must still arrive with its data. Without lazy pages it only checks
 * the data.
 */
#include <sys/mman.h>

#include "zdtm.h"

#define PG	4096UL
#define NPG	64UL /* at most one pagemap entry of the dump: one run */

static uint32_t crc[NPG];

int main(int argc, char **argv)
{
	uint8_t *m;

	test_init(argc, argv);
	/* aligned to the run: a fresh mapping of 64 pages, its own pagemap entry */
	m = mmap(NULL, NPG * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return fail_errno("mmap"), 1;
	for (size_t i = 0; i < NPG; i++) {
		crc[i] = i + 1;
		datagen(m + i * PG, PG, &crc[i]);
	}
	test_daemon();
	test_waitsig();

	if (mprotect(m + 16 * PG, 16 * PG, PROT_READ))
		return fail_errno("mprotect"), 1;
	for (size_t i = 0; i < NPG; i++)
		if (datachk(m + i * PG, PG, &crc[i]))
			return fail("page %zu holds wrong data", i), 1;
	pass();
	return 0;
}
