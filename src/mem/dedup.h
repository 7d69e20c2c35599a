/* SPDX-License-Identifier: MIT */
#ifndef AMBER_DEDUP_H
#define AMBER_DEDUP_H

/*
 * Dedup: pages an image saves again (PE_PRESENT) are punched out of the
 * parent image that held them before (fallocate PUNCH_HOLE), so a long
 * chain of incremental images does not grow without bound. The parent's
 * pagemap entries get new checksums (the holes read as zeros): the parent
 * stays valid as a layer under its child, but is no longer a complete
 * image on its own, as with CRIU's dedup.
 */

/* Dedups the image in @dirfd against its parents. 0 or -errno. */
int dedup_image(int dirfd);
/* amber dedup -D DIR: the image and, down the chain, each parent in turn. */
int dedup_run(const char *dir);

#endif
