/* SPDX-License-Identifier: MIT */
#ifndef BENCH_FILL_H
#define BENCH_FILL_H

/*
 * The data both the hog and the baseline use: xorshift64 words, never zero,
 * so the kernel's zero page and any zero-skipping can't make a run cheaper.
 */
#include <stddef.h>
#include <stdint.h>

static inline uint64_t bench_fill(uint64_t *w, size_t len)
{
	uint64_t x = 0x2545f4914f6cdd1dULL, sum = 0;

	for (size_t i = 0; i < len / 8; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		w[i] = x;
		sum += x * (i | 1);
	}
	return sum;
}

static inline uint64_t bench_sum(const uint64_t *w, size_t len)
{
	uint64_t sum = 0;

	for (size_t i = 0; i < len / 8; i++)
		sum += w[i] * (i | 1);
	return sum;
}

#endif
