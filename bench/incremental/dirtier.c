// SPDX-License-Identifier: MIT
/*
 * Benchmark workload: SIZE_MIB of touched anonymous memory; on each
 * SIGUSR1 it writes one word in PCT per mille of its pages (random pages,
 * no repeats within a round) and then creates ACKDIR/round-N.
 *
 *   dirtier SIZE_MIB PERMILLE ACKDIR
 */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static volatile sig_atomic_t rounds_asked;

static void on_usr1(int sig)
{
	(void)sig;
	rounds_asked++;
}

static uint64_t rng(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void touch(const char *dir, const char *name)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	if (f)
		fclose(f);
}

int main(int argc, char **argv)
{
	size_t size, npages, per_round;
	uint64_t seed = 0x9e3779b97f4a7c15ULL, *mem;
	uint8_t *seen;
	int done = 0;
	char name[64];

	if (argc != 4) {
		fprintf(stderr, "usage: dirtier SIZE_MIB PERMILLE ACKDIR\n");
		return 2;
	}
	size = strtoull(argv[1], NULL, 10) << 20;
	npages = size / 4096;
	per_round = npages * strtoull(argv[2], NULL, 10) / 1000;
	mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	seen = calloc(npages, 1);
	if (mem == MAP_FAILED || !seen)
		return 1;
	/*
	 * Page-sized tracking: with THP a soft-dirty or written bit covers
	 * 2 MiB, and 1% of random pages dirties every huge page. BENCH_THP=1
	 * measures that case instead.
	 */
	if (!getenv("BENCH_THP"))
		madvise(mem, size, MADV_NOHUGEPAGE);
	for (size_t i = 0; i < size / 8; i++)
		mem[i] = rng(&seed) | 1;
	sigset_t usr1, old;

	/* SIGUSR1 only arrives inside sigsuspend(): no lost wake-up. */
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	sigprocmask(SIG_BLOCK, &usr1, &old);
	signal(SIGUSR1, on_usr1);
	touch(argv[3], "ready");
	for (;;) {
		while (done == rounds_asked)
			sigsuspend(&old);
		done++;
		memset(seen, 0, npages);
		for (size_t n = 0; n < per_round;) {
			size_t p = rng(&seed) % npages;

			if (seen[p])
				continue;
			seen[p] = 1;
			mem[p * 512 + (rng(&seed) & 511)] = rng(&seed) | 1;
			n++;
		}
		snprintf(name, sizeof(name), "round-%d", done);
		touch(argv[3], name);
	}
}
