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
 *   amber-sums 1
 *   <fnv1a-64 hex> <size> <name>      one line per image, sorted by name
 *   end <fnv1a-64 hex of every line above>
 *
 * amber's dumps leave pages-N.img out: each of their pagemap runs carries
 * its own checksum, checked as the pages land, so the (large) page data is
 * read once. CRIU's pagemaps have no checksum, so the CRIU plugin
 * (criu-plugin/) lists the pages files too; a check verifies whatever is
 * listed.
 */

#include <stddef.h>
#include <stdint.h>

#define IMG_SUMS_NAME "amber.sums"
#define IMG_SUM_OFFSET 0xcbf29ce484222325ULL /* FNV-1a 64 */
#define IMG_SUM_PRIME  0x100000001b3ULL

/* amber.sums' checksum (FNV-1a 64) of @len more bytes after @h. */
static inline uint64_t img_sum_update(uint64_t h, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * IMG_SUM_PRIME;
	return h;
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

#endif
