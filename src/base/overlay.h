/* SPDX-License-Identifier: MIT */
#ifndef AMBER_OVERLAY_H
#define AMBER_OVERLAY_H

/*
 * overlayfs's layer directories, as its superblock options in mountinfo
 * name them: lowerdir=A:B (a "::" before the data-only layers),
 * upperdir=, workdir=, and the lowerdir+= / datadir+= of the new mount
 * API. The kernel shows each as its mounter gave it: relative to the
 * mounter's cwd and root, with ',', ':' and '\' escaped as \ooo.
 */
#include <stdbool.h>

#define OVL_FSTYPE_NAME "overlay"
#define OVERLAYFS_MAGIC 0x794c7630 /* statfs f_type */

/*
 * Calls @fn(key, path, arg) for each layer directory of @opts in order (key
 * "lowerdir", "upperdir", ...); stops at the first non-zero return and
 * returns it. -ENOMEM if @opts can't be copied.
 */
int ovl_for_each_layer(const char *opts, int (*fn)(const char *key, const char *path, void *arg),
		       void *arg);

/* A layer path amber can name again: absolute, with nothing escaped. */
bool ovl_path_ok(const char *path);

#endif
