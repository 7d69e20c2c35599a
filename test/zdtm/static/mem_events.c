// SPDX-License-Identifier: GPL-2.0
/*
 * Memory operations right after a restore, while a lazy restore may still
 * be delivering pages: fork (the child reads its copy), mremap (data moves
 * along), MADV_DONTNEED (reads zeros after), munmap of half a mapping.
 */
#include <sys/mman.h>
#include <sys/wait.h>

#include "zdtm.h"

#define SZ (1UL << 20)
#define PG 4096UL

static uint64_t mix(uint64_t x)
{
	x ^= x >> 31;
	x *= 0x7fb5d329728ea185ULL;
	return x ^ (x >> 27);
}

static void fill(uint8_t *p, size_t len, uint64_t seed)
{
	for (size_t i = 0; i < len; i += 8)
		*(uint64_t *)(p + i) = mix(seed + i);
}

static int check(const uint8_t *p, size_t len, uint64_t seed)
{
	for (size_t i = 0; i < len; i += 8)
		if (*(const uint64_t *)(p + i) != mix(seed + i))
			return -1;
	return 0;
}

int main(int argc, char **argv)
{
	uint8_t *m[4], *moved;
	int st;

	test_init(argc, argv);
	for (int i = 0; i < 4; i++) {
		m[i] = mmap(NULL, SZ, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (m[i] == MAP_FAILED)
			return fail_errno("mmap"), 1;
		fill(m[i], SZ, i * SZ);
	}
	test_daemon();
	test_waitsig();

	pid_t pid = fork();

	if (pid == 0)
		_exit(check(m[0], SZ, 0) ? 1 : 0);
	if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st))
		return fail("the forked child read wrong data"), 1;
	if (check(m[0], SZ, 0))
		return fail("the parent lost data after fork"), 1;
	moved = mremap(m[1], SZ, 2 * SZ, MREMAP_MAYMOVE);
	if (moved == MAP_FAILED || check(moved, SZ, SZ))
		return fail("data did not move with mremap"), 1;
	if (madvise(m[2], SZ / 2, MADV_DONTNEED))
		return fail_errno("madvise"), 1;
	for (size_t i = 0; i < SZ / 2; i++)
		if (m[2][i])
			return fail("not zero after MADV_DONTNEED at %zu", i), 1;
	if (check(m[2] + SZ / 2, SZ / 2, 2 * SZ + SZ / 2))
		return fail("MADV_DONTNEED took the other half"), 1;
	if (munmap(m[3], SZ / 2) || check(m[3] + SZ / 2, SZ / 2, 3 * SZ + SZ / 2))
		return fail("data lost after a partial munmap"), 1;
	pass();
	return 0;
}
