// SPDX-License-Identifier: GPL-2.0
/* One mapping split by mprotect into rw, r-- and --- parts. */
#include <sys/mman.h>
#include <unistd.h>

#include "zdtm.h"

static const struct {
	int prot;
	const char *perms;
} parts[] = {
	{ PROT_READ | PROT_WRITE, "rw-p" },
	{ PROT_READ, "r--p" },
	{ PROT_NONE, "---p" },
	{ PROT_READ | PROT_WRITE, "rw-p" },
	{ PROT_NONE, "---p" },
};
#define NR_PARTS (int)(sizeof(parts) / sizeof(parts[0]))
#define PART_PAGES 3

int main(int argc, char **argv)
{
	size_t part = PART_PAGES * sysconf(_SC_PAGESIZE);
	uint32_t crc[NR_PARTS];
	char perms[5] = "?", *mem;
	int i;

	test_init(argc, argv);
	mem = mmap(NULL, NR_PARTS * part, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return fail_errno("mmap"), 1;
	for (i = 0; i < NR_PARTS; i++) {
		crc[i] = i;
		datagen(mem + i * part, part, &crc[i]);
		if (mprotect(mem + i * part, part, parts[i].prot))
			return fail_errno("mprotect"), 1;
	}
	test_daemon();
	test_waitsig();

	for (i = 0; i < NR_PARTS; i++) {
		if (vma_perms(mem + i * part, perms) ||
		    strcmp(perms, parts[i].perms))
			return fail("part %d: perms %s, want %s", i, perms,
				    parts[i].perms), 1;
		if (mprotect(mem + i * part, part, PROT_READ))
			return fail_errno("mprotect"), 1;
		if (datachk(mem + i * part, part, &crc[i]))
			return fail("part %d: data mismatch", i), 1;
	}
	pass();
	return 0;
}
