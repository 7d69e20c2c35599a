// SPDX-License-Identifier: GPL-2.0
/*
 * 4 MiB of private memory in 32 slices of pages (page i in slice i % 32).
 * Change k forks child k, which rewrites slice 2k of its COW copy, while
 * the root rewrites slice 2k + 1 of its own.  At SIGTERM the root checks
 * its memory and forwards SIGTERM; each child checks its own and exits 0.
 */
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "zdtm.h"

#define MAP_BYTES (4UL << 20)
#define SLICES 32
#define MAX_CHANGES (SLICES / 2 - 1)

static size_t psize, npages;
static char *map, scratch[1 << 16];

static uint32_t seed(size_t i, int gen, int child)
{
	return (uint32_t)gen << 24 ^ (uint32_t)child << 23 ^ (uint32_t)i;
}

static void write_slice(int s, int gen, int child)
{
	for (size_t i = s; i < npages; i += SLICES) {
		uint32_t crc = seed(i, gen, child);

		datagen(map + i * psize, psize, &crc);
	}
}

/* Pages wrong as seen by child kc (0: the root after `root_gens` changes). */
static size_t check(int kc, int root_gens)
{
	size_t i, bad = 0;

	for (i = 0; i < npages; i++) {
		int s = i % SLICES, j = (s - 1) / 2;
		uint32_t crc = seed(i, 0, 0);

		if (kc && s == 2 * kc)
			crc = seed(i, kc, 1);
		else if ((s & 1) && j >= 1 && j <= root_gens)
			crc = seed(i, j, 0);
		datagen(scratch, psize, &crc);
		bad += !!memcmp(scratch, map + i * psize, psize);
	}
	return bad;
}

int main(int argc, char **argv)
{
	pid_t root, child[MAX_CHANGES + 1];
	int k, n = 0, p[2], status;
	size_t bad;
	char c;

	test_init(argc, argv);
	root = getpid();
	psize = sysconf(_SC_PAGESIZE);
	npages = MAP_BYTES / psize;
	map = mmap(NULL, MAP_BYTES, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (map == MAP_FAILED)
		return fail_errno("mmap"), 1;
	for (int s = 0; s < SLICES; s++)
		write_slice(s, 0, 0);
	test_iter_init();
	test_daemon();

	while ((k = test_iter_wait()) > 0) {
		if (k <= MAX_CHANGES) {
			if (pipe2(p, O_CLOEXEC))
				return fail_errno("pipe"), 1;
			child[k] = fork();
			if (child[k] < 0)
				return fail_errno("fork %d", k), 1;
			if (child[k] == 0) {
				write_slice(2 * k, k, 1);
				if (write(p[1], "R", 1) != 1)
					_exit(2);
				test_waitsig();
				if (getppid() != root)
					_exit(3);
				_exit(check(k, k - 1) ? 4 : 0);
			}
			if (read(p[0], &c, 1) != 1)
				return fail("child %d died", k), 1;
			close(p[0]);
			close(p[1]);
			write_slice(2 * k + 1, k, 0);
			n = k;
		}
		test_iter_ack(k);
	}

	bad = check(0, n);
	for (k = 1; k <= n; k++) {
		kill(child[k], SIGTERM);
		if (waitpid(child[k], &status, 0) != child[k])
			return fail_errno("waitpid %d", child[k]), 1;
		if (!WIFEXITED(status) || WEXITSTATUS(status))
			return fail("child %d: status %#x (4: memory)", k,
				    status), 1;
	}
	if (bad)
		return fail("root: %zu of %zu pages wrong", bad, npages), 1;
	pass();
	return 0;
}
