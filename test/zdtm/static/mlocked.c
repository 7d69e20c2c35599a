// SPDX-License-Identifier: GPL-2.0
/*
 * Locked memory: a MAP_LOCKED anonymous mapping and an mlock()ed part of
 * another, both with checksummed data. After restore they must still be
 * locked (the "lo" flag in smaps, VmLck unchanged) and hold their data; a
 * lazy restore must fill them eagerly (locked memory is populated at once).
 */
#include <stdio.h>
#include <sys/mman.h>

#include "zdtm.h"

#define LOCKED_BYTES (256UL << 10)
#define PART_BYTES   (64UL << 10)

/* VmLck of this process, in kB; -1 if unreadable. */
static long vm_locked_kb(void)
{
	char line[256];
	long kb = -1;
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmLck: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

/* 1 if the VMA holding @addr has the "lo" VmFlag in smaps. */
static int vma_locked(void *addr)
{
	unsigned long start, end, a = (unsigned long)addr;
	char line[512];
	int in = 0, ret = 0;
	FILE *f = fopen("/proc/self/smaps", "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx ", &start, &end) == 2) {
			in = a >= start && a < end;
			continue;
		}
		if (in && !strncmp(line, "VmFlags:", 8)) {
			ret = strstr(line, " lo") != NULL;
			break;
		}
	}
	fclose(f);
	return ret;
}

int main(int argc, char **argv)
{
	uint32_t crc1 = 7, crc2 = 9;
	long before;
	char *m1, *m2;

	test_init(argc, argv);
	m1 = mmap(NULL, LOCKED_BYTES, PROT_READ | PROT_WRITE,
		  MAP_PRIVATE | MAP_ANONYMOUS | MAP_LOCKED, -1, 0);
	m2 = mmap(NULL, 4 * PART_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
		  0);
	if (m1 == MAP_FAILED || m2 == MAP_FAILED)
		return fail_errno("mmap"), 1;
	datagen(m1, LOCKED_BYTES, &crc1);
	if (mlock(m2 + PART_BYTES, PART_BYTES))
		return fail_errno("mlock"), 1;
	datagen(m2 + PART_BYTES, PART_BYTES, &crc2);
	before = vm_locked_kb();
	if (before < (long)((LOCKED_BYTES + PART_BYTES) >> 10) || !vma_locked(m1) ||
	    !vma_locked(m2 + PART_BYTES) || vma_locked(m2))
		return fail("locking did not take (VmLck %ld kB)", before), 1;
	test_daemon();
	test_waitsig();

	if (!vma_locked(m1) || !vma_locked(m2 + PART_BYTES))
		fail("a locked VMA came back unlocked");
	else if (vma_locked(m2) || vma_locked(m2 + 2 * PART_BYTES))
		fail("an unlocked VMA came back locked");
	else if (vm_locked_kb() != before)
		fail("VmLck %ld kB, was %ld kB", vm_locked_kb(), before);
	else if (datachk(m1, LOCKED_BYTES, &crc1) || datachk(m2 + PART_BYTES, PART_BYTES, &crc2))
		fail("data mismatch in locked memory");
	else
		pass();
	return 0;
}
