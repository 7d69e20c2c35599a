// SPDX-License-Identifier: MIT
/*
 * The lazy-restore benchmark's workload: SIZE MiB of private anonymous
 * memory, each page filled from its index. It says "ready" and waits for
 * SIGUSR1 (that wait is where it is dumped). After a restore, SIGUSR1
 * makes it note the time, touch every page once in a random order and
 * time each first touch of a page not yet present (checked in
 * /proc/self/pagemap just before, outside the timed part: a page the
 * daemon already prefetched is not a fault), then verify every page.
 *
 *   workload SIZE_MIB OUTFILE     prints one line of results to OUTFILE
 */
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096UL

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static uint64_t mix(uint64_t x)
{
	x ^= x >> 31;
	x *= 0x7fb5d329728ea185ULL;
	x ^= x >> 27;
	return x;
}

static void fill(uint64_t *p, uint64_t idx)
{
	for (size_t i = 0; i < PAGE / 8; i += 8)
		p[i] = mix(idx * 512 + i);
}

static int check(const uint64_t *p, uint64_t idx)
{
	for (size_t i = 0; i < PAGE / 8; i += 8)
		if (p[i] != mix(idx * 512 + i))
			return -1;
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	uint64_t npages, *lat, nlat = 0, present = 0, bad = 0, t_go, t_touched, t_checked;
	uint32_t *order;
	sigset_t set;
	uint8_t *mem;
	int sig, pm;
	FILE *out;

	if (argc != 3)
		return fprintf(stderr, "usage: workload SIZE_MIB OUTFILE\n"), 2;
	npages = strtoull(argv[1], NULL, 0) * (1 << 20) / PAGE;
	mem = mmap(NULL, npages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return perror("mmap"), 1;
	for (uint64_t i = 0; i < npages; i++)
		fill((uint64_t *)(mem + i * PAGE), i);
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigprocmask(SIG_BLOCK, &set, NULL);
	printf("ready %d\n", getpid());
	fflush(stdout);
	/* dumped and restored in here */
	sigwait(&set, &sig);
	t_go = now_ns();

	/* New memory (not lazy): the order and the latencies. */
	order = malloc(npages * sizeof(*order));
	lat = malloc(npages * sizeof(*lat));
	pm = open("/proc/self/pagemap", O_RDONLY);
	if (!order || !lat || pm < 0)
		return perror("setup"), 1;
	for (uint64_t i = 0; i < npages; i++)
		order[i] = i;
	srand(1);
	for (uint64_t i = npages - 1; i > 0; i--) {
		uint64_t j = ((uint64_t)rand() << 16 ^ rand()) % (i + 1);
		uint32_t t = order[i];

		order[i] = order[j];
		order[j] = t;
	}
	for (uint64_t k = 0; k < npages; k++) {
		uint64_t i = order[k], e = 0, t0, t1;
		volatile uint8_t *p = mem + i * PAGE;

		if (pread(pm, &e, 8, ((uintptr_t)p / PAGE) * 8) == 8 && (e >> 63)) {
			present++;
			(void)*p;
			continue;
		}
		t0 = now_ns();
		(void)*p;
		t1 = now_ns();
		lat[nlat++] = t1 - t0;
	}
	t_touched = now_ns();
	for (uint64_t i = 0; i < npages; i++)
		bad += check((uint64_t *)(mem + i * PAGE), i) != 0;
	t_checked = now_ns();
	qsort(lat, nlat, sizeof(*lat), cmp_u64);
	out = fopen(argv[2], "w");
	if (!out)
		return perror(argv[2]), 1;
	fprintf(out, "go_ns=%llu faults=%llu present=%llu median_ns=%llu p99_ns=%llu "
		"touched_ns=%llu checked_ns=%llu bad_pages=%llu\n",
		(unsigned long long)t_go, (unsigned long long)nlat, (unsigned long long)present,
		(unsigned long long)(nlat ? lat[nlat / 2] : 0),
		(unsigned long long)(nlat ? lat[nlat * 99 / 100] : 0),
		(unsigned long long)t_touched, (unsigned long long)t_checked,
		(unsigned long long)bad);
	fclose(out);
	return bad ? 1 : 0;
}
