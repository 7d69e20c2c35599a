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

#define IMG_SUMS_NAME "amber.sums"

/* Writes amber.sums for the images in @dirfd (after they are all closed). */
int img_sums_write(int dirfd);
/* The same, pages-N.img included (for CRIU's dumps: criu-plugin/). */
int img_sums_write_all(int dirfd);

/*
 * Checks every image listed in amber.sums of @dirfd: present, same size,
 * same checksum. A dump without amber.sums (CRIU's, or an older amber's)
 * passes with a warning: only the loader's structural checks apply.
 */
int img_sums_check(int dirfd);

#endif
