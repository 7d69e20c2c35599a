// SPDX-License-Identifier: GPL-2.0
/*
 * Memory events right where a lazy restore's prefetch is working: after
 * SIGTERM, while pages are still arriving, find the first page not yet in
 * (mincore) and, in turn, MADV_DONTNEED a batch there (must read zeros),
 * fork (the child must see every page around it), or mremap a batch away
 * (its data must move with it) and back. A prefetch copy that lands after
 * such an event was read would show here as old data, zeros or wrong data.
 * Without lazy pages (every page already in) it only checks the data.
 */
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>

#include "zdtm.h"

#define PG	4096UL
#define NPG	65536UL /* 256 MiB: prefetch takes a few hundred ms */
#define BATCH	64UL

static uint8_t *m, *away;
static uint8_t removed[NPG];

static uint64_t mix(uint64_t x)
{
	x ^= x >> 31;
	x *= 0x7fb5d329728ea185ULL;
	return x ^ (x >> 27);
}

static void fill(uint8_t *p, size_t pg)
{
	for (size_t i = 0; i < PG; i += 8)
		*(uint64_t *)(p + i) = mix(pg * PG + i + 1);
}

/* 1: @p holds page @pg's data; 0: zeros; -1: anything else */
static int page_is(const uint8_t *p, size_t pg)
{
	int ok = 1, zero = 1;

	for (size_t i = 0; i < PG; i += 8) {
		uint64_t v = *(const uint64_t *)(p + i);

		ok &= v == mix(pg * PG + i + 1);
		zero &= !v;
	}
	return ok ? 1 : zero ? 0 : -1;
}

/* The first page not yet in after the first run that is; -1 when all are in. */
static long cursor(void)
{
	static unsigned char v[NPG];
	size_t i = 0;

	if (mincore(m, NPG * PG, v))
		return -1;
	while (i < NPG && !(v[i] & 1))
		i++;
	while (i < NPG && (v[i] & 1))
		i++;
	return i == NPG ? -1 : (long)i;
}

static int act_remove(size_t c, size_t n)
{
	madvise(m + c * PG, n * PG, MADV_DONTNEED);
	for (size_t i = c; i < c + n; i++) {
		removed[i] = 1;
		if (page_is(m + i * PG, i) != 0)
			return fail("page %zu holds data after MADV_DONTNEED", i), -1;
	}
	return 0;
}

static int act_fork(size_t c)
{
	size_t lo = c > 256 ? c - 256 : 0, hi = c + 512 < NPG ? c + 512 : NPG;
	int st;
	pid_t k = fork();

	if (k < 0)
		return fail_errno("fork"), -1;
	if (k == 0) {
		for (size_t i = lo; i < hi; i++)
			if (page_is(m + i * PG, i) != (removed[i] ? 0 : 1))
				_exit(1);
		_exit(0);
	}
	if (waitpid(k, &st, 0) != k || !WIFEXITED(st) || WEXITSTATUS(st))
		return fail("a child forked at page %zu sees wrong pages", c), -1;
	return 0;
}

static int act_remap(size_t c, size_t n)
{
	if (mremap(m + c * PG, n * PG, n * PG, MREMAP_MAYMOVE | MREMAP_FIXED, away + c * PG) ==
	    MAP_FAILED)
		return fail_errno("mremap"), -1;
	for (size_t i = c; i < c + n; i++)
		if (page_is(away + i * PG, i) != (removed[i] ? 0 : 1))
			return fail("page %zu moved by mremap holds wrong data", i), -1;
	if (mremap(away + c * PG, n * PG, n * PG, MREMAP_MAYMOVE | MREMAP_FIXED, m + c * PG) ==
	    MAP_FAILED)
		return fail_errno("mremap back"), -1;
	return 0;
}

int main(int argc, char **argv)
{
	struct timespec t0, t;
	int acts = 0, bad = 0;

	test_init(argc, argv);
	signal(SIGCHLD, SIG_DFL);
	m = mmap(NULL, NPG * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	away = mmap(NULL, NPG * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (m == MAP_FAILED || away == MAP_FAILED)
		return fail_errno("mmap"), 1;
	for (size_t i = 0; i < NPG; i++)
		fill(m + i * PG, i);
	test_daemon();
	test_waitsig();

	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (!bad) {
		long c = cursor();
		size_t n;

		clock_gettime(CLOCK_MONOTONIC, &t);
		if (c < 0 || t.tv_sec - t0.tv_sec > 5)
			break;
		n = (size_t)c + BATCH > NPG ? NPG - c : BATCH;
		switch (acts++ % 3) {
		case 0:
			bad = act_remove(c, n);
			break;
		case 1:
			bad = act_fork(c);
			break;
		default:
			bad = act_remap(c, n);
		}
	}
	for (size_t i = 0; i < NPG && !bad; i++)
		if (page_is(m + i * PG, i) != (removed[i] ? 0 : 1)) {
			fail("page %zu wrong at the end", i);
			bad = 1;
		}
	if (!bad) {
		test_msg("%d events raced the prefetch\n", acts);
		pass();
	}
	return 0;
}
