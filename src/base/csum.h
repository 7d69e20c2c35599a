/* SPDX-License-Identifier: MIT */
#ifndef AMBER_CSUM_H
#define AMBER_CSUM_H

/*
 * Checksum of page data: 64-bit, word-wise, four independent lanes so it
 * runs near memory speed. Header-only because the dumper (libc) and the
 * restorer blob (no libc) must compute exactly the same value.
 *
 * It can be taken in pieces (init, add, add, ..., end) with the same
 * result as amber_csum() over the whole buffer, so that each piece is
 * summed while it is still in the cache after a copy: every piece but the
 * last must then be a multiple of 32 bytes (pages always are).
 */
#include <stddef.h>
#include <stdint.h>

/* Pieces of image files start anywhere: loads that need no alignment (a mov on x86). */
typedef uint64_t amber_csum_word __attribute__((aligned(1), may_alias));

struct amber_csum_ctx {
	uint64_t a, b, c, d;
	uint64_t len;
};

static inline void amber_csum_init(struct amber_csum_ctx *s, uint64_t seed)
{
	s->a = seed;
	s->b = s->c = s->d = 0;
	s->len = 0;
}

static inline void amber_csum_add(struct amber_csum_ctx *s, const void *buf, size_t len)
{
	const amber_csum_word *w = buf;
	uint64_t a = s->a, b = s->b, c = s->c, d = s->d;
	size_t i, n = len / 8;

	for (i = 0; i + 4 <= n; i += 4) {
		a += w[i];
		b += a ^ w[i + 1];
		c += w[i + 2];
		d += c ^ w[i + 3];
	}
	for (; i < n; i++)
		a += w[i] * 0x9e3779b97f4a7c15ULL;
	s->a = a, s->b = b, s->c = c, s->d = d;
	s->len += len;
}

static inline uint64_t amber_csum_end(const struct amber_csum_ctx *s)
{
	return s->a ^ (s->b * 31) ^ (s->c * 0x100000001b3ULL) ^ (s->d << 1) ^ s->len;
}

static inline uint64_t amber_csum(const void *buf, size_t len, uint64_t seed)
{
	struct amber_csum_ctx s;

	amber_csum_init(&s, seed);
	amber_csum_add(&s, buf, len);
	return amber_csum_end(&s);
}

#endif
