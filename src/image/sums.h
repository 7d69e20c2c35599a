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
 * pages-N.img is not listed: each pagemap run carries its own checksum,
 * checked as the pages land, so the (large) page data is read once.
 */

#define IMG_SUMS_NAME "amber.sums"

/* Writes amber.sums for the images in @dirfd (after they are all closed). */
int img_sums_write(int dirfd);

/*
 * Checks every image listed in amber.sums of @dirfd: present, same size,
 * same checksum. A dump without amber.sums (CRIU's, or an older amber's)
 * passes with a warning: only the loader's structural checks apply.
 */
int img_sums_check(int dirfd);

#endif
