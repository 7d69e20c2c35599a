/* SPDX-License-Identifier: MIT */
#ifndef AMBER_CSUM_H
#define AMBER_CSUM_H

/*
 * Checksum of page data: 64-bit, word-wise, four independent lanes so it
 * runs near memory speed. Header-only because the dumper (libc) and the
 * restorer blob (no libc) must compute exactly the same value.
 */
#include <stddef.h>
#include <stdint.h>

static inline uint64_t amber_csum(const void *buf, size_t len, uint64_t seed)
{
	const uint64_t *w = buf;
	uint64_t a = seed, b = 0, c = 0, d = 0;
	size_t i, n = len / 8;

	for (i = 0; i + 4 <= n; i += 4) {
		a += w[i];
		b += a ^ w[i + 1];
		c += w[i + 2];
		d += c ^ w[i + 3];
	}
	for (; i < n; i++)
		a += w[i] * 0x9e3779b97f4a7c15ULL;
	return a ^ (b * 31) ^ (c * 0x100000001b3ULL) ^ (d << 1) ^ len;
}

#endif
