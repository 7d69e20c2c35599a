/* SPDX-License-Identifier: MIT */
#ifndef AMBER_IMAGE_SUMS_H
#define AMBER_IMAGE_SUMS_H

/*
 * amber.sums: a checksum of every protobuf image of a dump, so that a
 * restore refuses a corrupt or incomplete image set before it creates
 * any process. The framing and range checks of the loader catch
 * truncation and garbage, but not a flipped register or VMA bound that
 * still decodes; this catches those too.
 *
 * A text file beside the images (not an .img: crit and CRIU ignore it):
 *
 *   amber-sums 2
 *   <sum hex> <size> <name>      one line per image, sorted by name
 *   end <sum hex of every line above>
 *
 * Version 2's sum is img_sum_*() below: amber_csum's four word-wise lanes
 * (base/csum.h, near memory speed) with a stronger end. Version 1 used
 * FNV-1a 64, a multiply per byte (~1 GB/s, 5% of a dump of 6000
 * connections); its files (older dumps) are still checked, never written.
 *
 * amber's dumps leave pages-N.img out: each of their pagemap runs carries
 * its own checksum, checked as the pages land, so the (large) page data is
 * read once. CRIU's pagemaps have no checksum, so the CRIU plugin
 * (criu-plugin/) lists the pages files too; a check verifies whatever is
 * listed.
 */

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base/csum.h"

#define IMG_SUMS_NAME "amber.sums"
#define IMG_SUM_SEED  0x616d6265722d7332ULL /* "amber-s2" */

/*
 * amber.sums' checksum of a byte stream taken in pieces of any length:
 * whole 32-byte blocks go to amber_csum's lanes, the rest waits in
 * carry. The sum equals img_sum() of the pieces joined. Inline: image.c
 * sums as it writes and sums.c reads image.c's files (no file cycle).
 */
struct img_sum_ctx {
	struct amber_csum_ctx lanes;
	uint64_t size;	       /* bytes summed, carry included */
	uint64_t carry[4];     /* < 32 bytes not yet in the lanes */
	unsigned int carry_len;
};

/* The mixer is amber_csum_mix(), shared with the page sum (version 2). */
#define img_sum_mix amber_csum_mix

static inline void img_sum_init(struct img_sum_ctx *s)
{
	amber_csum_init(&s->lanes, IMG_SUM_SEED);
	s->size = 0;
	s->carry_len = 0;
}

static inline void img_sum_update(struct img_sum_ctx *s, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	size_t whole;

	s->size += len;
	if (s->carry_len) {
		size_t n = sizeof(s->carry) - s->carry_len;

		if (n > len)
			n = len;
		memcpy((uint8_t *)s->carry + s->carry_len, p, n);
		s->carry_len += n;
		p += n;
		len -= n;
		if (s->carry_len < sizeof(s->carry))
			return;
		amber_csum_add(&s->lanes, s->carry, sizeof(s->carry));
		s->carry_len = 0;
	}
	/* amber_csum_add() takes pieces that are whole blocks, but the last. */
	whole = len & ~(sizeof(s->carry) - 1);
	if (whole)
		amber_csum_add(&s->lanes, p, whole);
	memcpy(s->carry, p + whole, len - whole);
	s->carry_len = len - whole;
}

/*
 * The sum of everything added; @s is left as it was. Not amber_csum_end():
 * it loses a lane's top bit (d << 1, and a's and b's can cancel), so a
 * flip of bit 7 of byte 31 of a block went unseen. Each lane goes through
 * a bijection instead, so any change of one lane shows.
 */
static inline uint64_t img_sum_end(const struct img_sum_ctx *s)
{
	struct amber_csum_ctx l = s->lanes;
	uint64_t h;

	if (s->carry_len) {
		uint64_t tail[4] = { 0 }; /* the last word zero-padded; size tells them apart */

		memcpy(tail, s->carry, s->carry_len);
		amber_csum_add(&l, tail, (s->carry_len + 7) & ~7u);
	}
	h = img_sum_mix(l.a);
	h = img_sum_mix(h ^ l.b);
	h = img_sum_mix(h ^ l.c);
	h = img_sum_mix(h ^ l.d);
	return img_sum_mix(h ^ s->size);
}

/* One-shot: the sum of @len bytes at @buf. */
static inline uint64_t img_sum(const void *buf, size_t len)
{
	struct img_sum_ctx s;

	img_sum_init(&s);
	img_sum_update(&s, buf, len);
	return img_sum_end(&s);
}

struct img_sums;

/* Writes amber.sums for the images in @dirfd (after they are all closed). */
int img_sums_write(int dirfd);
/* The same, taking the checksums of the images in @written from there. */
int img_sums_write_known(int dirfd, struct img_sums *written);
/* The same, pages-N.img included (for CRIU's dumps: criu-plugin/). */
int img_sums_write_all(int dirfd);

/*
 * Checks every image listed in amber.sums of @dirfd: present, same size,
 * same checksum. A dump without amber.sums (CRIU's, or an older amber's)
 * passes with a warning: only the loader's structural checks apply.
 */
int img_sums_check(int dirfd);
/*
 * The same, but the images whose names start with @prefix are not read
 * here: their entries go to @later (sorted by name), for the loader to
 * check as it reads them (img_open_expecting()), so that thousands of
 * small images (tcp-stream) are opened and read once, not twice. A
 * version 1 list (FNV-1a) is checked whole, leaving @later empty.
 */
int img_sums_check_but(int dirfd, const char *prefix, struct img_sums *later);

#endif
