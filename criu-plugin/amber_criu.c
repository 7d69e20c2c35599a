// SPDX-License-Identifier: MIT
/*
 * amber's plugin for stock CRIU (criu --libdir DIR): CRIU's image sets
 * sealed with amber's checksums, and checked before a restore, also after
 * a kexec that carried them in a PKRAM store (docs/criu-plugin.md).
 *
 *   dump            at the end of a successful one, amber.sums lists every
 *                   image of the set with its size and checksum, pages
 *                   included (CRIU's pagemaps carry no checksum); the
 *                   pre-dumps of its chain (parent, parent/parent, ...)
 *                   are sealed then too: CRIU calls no plugin exit hook
 *                   after a pre-dump
 *   restore         before CRIU forks anything: every listed image is
 *                   there, same size, same checksum, in the set and in
 *                   each sealed parent, or the restore is refused naming
 *                   the file; an image directory on a
 *                   PKRAM store must be sealed and must not have come back
 *                   empty (the next kernel drops a store it finds damaged)
 *
 * Messages go to CRIU's log through CRIU's own print_on_level(), which
 * criu exports to its plugins with the same levels as amber's.
 */
#define LOG_PREFIX "amber-plugin: "
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <criu/criu-plugin.h>

#include "base/log.h"
#include "base/util.h"
#include "image/sums.h"

#define TMPFS_MAGIC_NR 0x01021994

/*
 * The super block options of the mount holding @dirfd, from its mount id
 * in fdinfo and /proc/self/mountinfo. 0, or -errno.
 */
static int mount_sopts(int dirfd, char *sopts, size_t len)
{
	char path[64];
	cleanup_free char *info = NULL, *mi = NULL;
	char *p;
	int mnt_id;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", dirfd);
	info = read_file_at(AT_FDCWD, path, NULL);
	if (!info || !(p = strstr(info, "mnt_id:")) || sscanf(p, "mnt_id: %d", &mnt_id) != 1)
		return -ENOENT;
	mi = read_file_at(AT_FDCWD, "/proc/self/mountinfo", NULL);
	if (!mi)
		return -errno;
	for (char *l = mi, *next; l && *l; l = next) {
		char *dash;
		int id;

		next = strchr(l, '\n');
		if (next)
			*next++ = '\0';
		dash = strstr(l, " - ");
		if (sscanf(l, "%d", &id) != 1 || id != mnt_id || !dash)
			continue;
		/* " - fstype source super-options" */
		p = strchr(dash + 3, ' ');
		p = p ? strchr(p + 1, ' ') : NULL;
		if (!p)
			return -EINVAL;
		snprintf(sopts, len, "%s", p + 1);
		return 0;
	}
	return -ENOENT;
}

/* The store name if the images live on a tmpfs mounted with pkram=NAME. */
static bool on_pkram_store(int dirfd, char *name, size_t len)
{
	char sopts[512];
	struct statfs sf;
	const char *p;

	if (fstatfs(dirfd, &sf) || sf.f_type != TMPFS_MAGIC_NR)
		return false;
	if (mount_sopts(dirfd, sopts, sizeof(sopts)))
		return false;
	for (p = sopts; (p = strstr(p, "pkram=")); p++) {
		if (p != sopts && p[-1] != ',')
			continue;
		p += strlen("pkram=");
		snprintf(name, len, "%.*s", (int)strcspn(p, ","), p);
		return true;
	}
	return false;
}

static bool sealed(int dirfd)
{
	return faccessat(dirfd, IMG_SUMS_NAME, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
}

#define CHAIN_MAX 64

/*
 * Calls @fn on each parent of the set in @dirfd (CRIU's "parent" link,
 * followed as CRIU does), nearest first; stops at the first error.
 */
static int for_each_parent(int dirfd, int (*fn)(int fd, int depth))
{
	int fd = dirfd, ret = 0;

	for (int depth = 1; depth <= CHAIN_MAX && !ret; depth++) {
		int next = openat(fd, "parent", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		if (fd != dirfd)
			close(fd);
		if (next < 0)
			return errno == ENOENT ? 0 : -errno;
		fd = next;
		ret = fn(fd, depth);
	}
	if (fd != dirfd)
		close(fd);
	return ret;
}

static int seal_parent(int fd, int depth)
{
	if (sealed(fd))
		return 0;
	if (img_sums_write_all(fd)) {
		pr_err("could not seal the pre-dump %d level(s) up\n", depth);
		return -EIO;
	}
	pr_info("pre-dump %d level(s) up sealed\n", depth);
	return 0;
}

static int check_parent(int fd, int depth)
{
	if (!sealed(fd))
		return 0;
	if (img_sums_check(fd)) {
		pr_err("the pre-dump %d level(s) up fails amber's checksums\n", depth);
		return -EINVAL;
	}
	return 0;
}

static int check_restore(int dirfd)
{
	char store[256];
	int ret;

	if (on_pkram_store(dirfd, store, sizeof(store)) && !sealed(dirfd)) {
		if (faccessat(dirfd, "inventory.img", F_OK, AT_SYMLINK_NOFOLLOW))
			pr_err("PKRAM store %s came back without its images (the next kernel drops a store it finds damaged; see dmesg): refused\n",
			       store);
		else
			pr_err("PKRAM store %s holds images not sealed by this plugin (no %s): refused\n",
			       store, IMG_SUMS_NAME);
		return -ENOENT;
	}
	ret = img_sums_check(dirfd);
	if (!ret)
		ret = for_each_parent(dirfd, check_parent);
	if (ret) {
		pr_err("the image set fails amber's checksums: restore refused, nothing created\n");
		return ret;
	}
	pr_info("image set matches %s\n", IMG_SUMS_NAME);
	return 0;
}

static int amber_plugin_init(int stage)
{
	int dirfd;

	if (stage != CR_PLUGIN_STAGE__RESTORE)
		return 0;
	dirfd = criu_get_image_dir();
	if (dirfd < 0) {
		pr_err("CRIU gave no image directory\n");
		return -1;
	}
	return check_restore(dirfd) ? -1 : 0;
}

/*
 * exit() comes after CRIU closed every image of the set and before it
 * closes the directory. It cannot fail the dump: a set left unsealed is
 * then refused on a PKRAM store and passes with CRIU's warning elsewhere.
 */
static void amber_plugin_exit(int stage, int ret)
{
	int dirfd;

	if (ret || stage != CR_PLUGIN_STAGE__DUMP)
		return;
	dirfd = criu_get_image_dir();
	if (dirfd < 0 || img_sums_write_all(dirfd))
		pr_err("could not seal the image set with %s\n", IMG_SUMS_NAME);
	else
		pr_info("image set sealed in %s\n", IMG_SUMS_NAME);
	if (dirfd >= 0)
		for_each_parent(dirfd, seal_parent);
}

/* The one symbol CRIU looks up; everything else stays hidden. */
extern __attribute__((visibility("default"))) cr_plugin_desc_t CR_PLUGIN_DESC;
CR_PLUGIN_REGISTER("amber", amber_plugin_init, amber_plugin_exit)
