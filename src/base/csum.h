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
 *
 * Two end steps, so two sums over the same lanes (docs/images.md):
 *   version 1, amber_csum_end(): pagemap field amber_csum (1000), written
 *     by older builds, still verified; it drops lane d's top bit (d << 1),
 *     so a flip of bit 7 of byte 31 of a 32-byte block went unseen.
 *   version 2, amber_csum2_end(): field amber_csum2 (1001), written now;
 *     each lane and the length go through a bijective mixer, so no bit
 *     of any lane is lost.
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
	size_t i, n = len / 8, blocks = n & ~(size_t)3;

	for (i = 0; i < blocks; i += 4) {
		a += w[i];
		b += a ^ w[i + 1];
		c += w[i + 2];
		d += c ^ w[i + 3];
	}
	for (; i < n; i++)
		a += w[i] * 0x9e3779b97f4a7c15ULL;
	/*
	 * The last < 8 bytes as one zero-padded word (len tells them from
	 * zeros). Pages never have them, so no stored version 1 sum changes.
	 */
	if (len & 7) {
		const unsigned char *p = (const unsigned char *)buf + (len & ~(size_t)7);
		uint64_t tail = 0;

		for (unsigned int k = 0; k < (len & 7); k++)
			tail |= (uint64_t)p[k] << (8 * k);
		a += tail * 0x9e3779b97f4a7c15ULL;
	}
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

/* A bijection of 64-bit words (splitmix64's end): every input bit moves every output bit. */
static inline uint64_t amber_csum_mix(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* Version 2's end: chained, so a change in any one lane changes the sum. */
static inline uint64_t amber_csum2_end(const struct amber_csum_ctx *s)
{
	uint64_t h;

	h = amber_csum_mix(s->a);
	h = amber_csum_mix(h ^ s->b);
	h = amber_csum_mix(h ^ s->c);
	h = amber_csum_mix(h ^ s->d);
	return amber_csum_mix(h ^ s->len);
}

static inline uint64_t amber_csum2(const void *buf, size_t len, uint64_t seed)
{
	struct amber_csum_ctx s;

	amber_csum_init(&s, seed);
	amber_csum_add(&s, buf, len);
	return amber_csum2_end(&s);
}

/* Which sum a pagemap entry carries; 0: none (CRIU's entries, holes). */
#define AMBER_CSUM_V1 1 /* field amber_csum (1000), older dumps */
#define AMBER_CSUM_V2 2 /* field amber_csum2 (1001) */

static inline uint64_t amber_csum_end_ver(const struct amber_csum_ctx *s, unsigned int ver)
{
	return ver == AMBER_CSUM_V1 ? amber_csum_end(s) : amber_csum2_end(s);
}

static inline uint64_t amber_csum_ver(const void *buf, size_t len, uint64_t seed,
				      unsigned int ver)
{
	struct amber_csum_ctx s;

	amber_csum_init(&s, seed);
	amber_csum_add(&s, buf, len);
	return amber_csum_end_ver(&s, ver);
}

#endif
