// SPDX-License-Identifier: MIT
/*
 * The image store of amber kexec: a tmpfs mounted with pkram=NAME at
 * KEXEC_STORE_ROOT/NAME (private to root), preserved across kexec by
 * "remount,preserve,ro" and mounted again by name in the next kernel.
 * The preserve goes through fspick()/fsconfig() rather than mount(2) so
 * that the kernel's reason for a refusal (a symlink, a file open for
 * writing, ...) can be read back and reported.
 */
#define LOG_PREFIX "kexec-store: "
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "kexec/kexec.h"

/* The new mount API (5.2); glibc's wrappers clash with linux/mount.h. */
#ifndef SYS_fspick
#define SYS_fspick 433
#endif
#ifndef SYS_fsconfig
#define SYS_fsconfig 431
#endif
#define KX_FSPICK_CLOEXEC	  0x1
#define KX_FSPICK_EMPTY_PATH	  0x8
#define KX_FSCONFIG_SET_FLAG	  0
#define KX_FSCONFIG_CMD_RECONFIGURE 7

#define PKRAM_SYSFS "/sys/kernel/pkram"

int kexec_store_name_ok(const char *name)
{
	size_t n = name ? strlen(name) : 0;

	if (!n || n > KEXEC_NAME_MAX || !strcmp(name, ".") || !strcmp(name, ".."))
		goto bad;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
			goto bad;
	}
	return 0;
bad:
	pr_err("store name '%s': 1 to %d characters of [A-Za-z0-9._-]\n", name ? name : "",
	       KEXEC_NAME_MAX);
	return -EINVAL;
}

/*
 * What is mounted exactly at @dir: 1 and the super block options in @sopts
 * if it is a tmpfs, 2 if it is something else, 0 if nothing.
 */
static int mounted_at(const char *dir, char *sopts, size_t len)
{
	cleanup_free char *mi = read_file_at(AT_FDCWD, "/proc/self/mountinfo", NULL);
	int found = 0;

	if (!mi)
		return -errno;
	for (char *l = mi, *next; l && *l; l = next) {
		char mp[PATH_MAX], fstype[64], so[512];
		char *dash;

		next = strchr(l, '\n');
		if (next)
			*next++ = '\0';
		dash = strstr(l, " - ");
		if (!dash || sscanf(l, "%*s %*s %*s %*s %4095s", mp) != 1 ||
		    sscanf(dash + 3, "%63s %*s %511s", fstype, so) != 2)
			continue;
		if (strcmp(mp, dir))
			continue;
		/* the last mount at a place is the one seen there */
		found = strcmp(fstype, "tmpfs") ? 2 : 1;
		snprintf(sopts, len, "%s", so);
	}
	return found;
}

static bool has_pkram_opt(const char *sopts, const char *name)
{
	char want[KEXEC_NAME_MAX + 8];
	size_t n;

	n = snprintf(want, sizeof(want), "pkram=%s", name);
	for (const char *p = sopts; (p = strstr(p, want)); p += n)
		if ((p == sopts || p[-1] == ',') && (p[n] == ',' || p[n] == '\0'))
			return true;
	return false;
}

static int store_init(struct kexec_store *s, const char *name)
{
	int ret = kexec_store_name_ok(name);

	memset(s, 0, sizeof(*s));
	s->dirfd = -1;
	if (ret)
		return ret;
	snprintf(s->name, sizeof(s->name), "%s", name);
	snprintf(s->dir, sizeof(s->dir), "%s/%s", KEXEC_STORE_ROOT, name);
	if (mkdir_p(KEXEC_STORE_ROOT, 0700) || (mkdir(s->dir, 0700) && errno != EEXIST)) {
		pr_perror("can't create %s", s->dir);
		return -errno;
	}
	return 0;
}

static int store_mount(struct kexec_store *s)
{
	char data[KEXEC_NAME_MAX + 32];

	/* a tree's own tmpfs gets back its root's mode from the preserved tree */
	snprintf(data, sizeof(data), "pkram=%s%s", s->name, s->own ? "" : ",mode=0700");
	if (mount(s->own ? "tmpfs" : "amber-pkram", s->dir, "tmpfs", MS_NOSUID | MS_NODEV, data)) {
		int err = errno;

		if (err == EINVAL && access(PKRAM_SYSFS, F_OK)) {
			pr_err("this kernel has no PKRAM (no %s; tmpfs refused pkram=): "
			       "amber kexec needs the kernel of kernel/ (docs/pkram.md)\n",
			       PKRAM_SYSFS);
			return -EOPNOTSUPP;
		}
		pr_err("can't mount tmpfs with pkram=%s at %s: %s\n", s->name, s->dir,
		       strerror(err));
		return -err;
	}
	s->mounted = true;
	return 0;
}

static int store_open(struct kexec_store *s)
{
	s->dirfd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->dirfd < 0) {
		pr_perror("can't open %s", s->dir);
		return -errno;
	}
	return 0;
}

static bool dir_empty(int dirfd)
{
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;
	bool empty = true;

	if (!d) {
		if (fd >= 0)
			close(fd);
		return false;
	}
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			empty = false;
	closedir(d);
	return empty;
}

int kexec_store_create(struct kexec_store *s, const char *name)
{
	char sopts[512];
	int ret = store_init(s, name);

	if (ret)
		return ret;
	ret = mounted_at(s->dir, sopts, sizeof(sopts));
	if (ret < 0)
		return ret;
	if (ret) {
		pr_err("%s is mounted already (a store of an earlier run, or pre-dumps in "
		       "it: then give --prev-images-dir): restore from it with --pkram %s, or "
		       "umount it first\n", s->dir, s->name);
		return -EEXIST;
	}
	ret = store_mount(s);
	if (!ret)
		ret = store_open(s);
	if (ret)
		kexec_store_close(s, true);
	else
		pr_info("store '%s' mounted at %s\n", s->name, s->dir);
	return ret;
}

/* Sets @s up for store @name: 1 if it is mounted already, 0 if not, or -errno. */
static int store_init_mounted(struct kexec_store *s, const char *name)
{
	char sopts[512];
	int ret = store_init(s, name);

	if (ret)
		return ret;
	ret = mounted_at(s->dir, sopts, sizeof(sopts));
	if (ret < 0)
		return ret;
	if (ret == 2 || (ret == 1 && !has_pkram_opt(sopts, name))) {
		pr_err("%s holds another mount, not the store pkram=%s\n", s->dir, name);
		return -EBUSY;
	}
	return ret;
}

int kexec_store_reuse(struct kexec_store *s, const char *name, bool create)
{
	int ret = store_init_mounted(s, name);

	if (ret < 0)
		return ret;
	if (!ret && !create) {
		pr_err("no store '%s' is mounted at %s: the parent images must be in it "
		       "(amber pre-dump --pkram %s -D DIR)\n", name, s->dir, name);
		kexec_store_close(s, true); /* the mount point store_init() made */
		return -ENOENT;
	}
	if (ret) {
		s->mounted = s->kept = true;
		ret = 0;
	} else {
		ret = store_mount(s);
	}
	if (!ret)
		ret = store_open(s);
	if (ret) {
		kexec_store_close(s, true);
		return ret;
	}
	pr_info("store '%s' %s at %s\n", s->name, s->kept ? "found" : "mounted", s->dir);
	return 0;
}

void kexec_store_clear_top(struct kexec_store *s)
{
	int fd = openat(s->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;

	if (!d) {
		if (fd >= 0)
			close(fd);
		pr_perror("can't list %s", s->dir);
		return;
	}
	while ((de = readdir(d)))
		if (de->d_type != DT_DIR && unlinkat(s->dirfd, de->d_name, 0))
			pr_perror("can't remove %s/%s", s->dir, de->d_name);
	closedir(d);
}

int kexec_store_find(struct kexec_store *s, const char *name)
{
	int ret = store_init_mounted(s, name);

	if (ret < 0)
		return ret;
	/* mounted already: an earlier restore from it failed, or lazy-pages */
	if (ret == 1)
		s->mounted = true;
	else
		ret = store_mount(s);
	if (!ret || ret == 1)
		ret = store_open(s);
	if (!ret && dir_empty(s->dirfd)) {
		pr_err("store '%s' is empty: nothing was preserved under that name by the "
		       "previous kernel (was it booted with pkram=PFN?)\n", name);
		ret = -ENOENT;
	}
	if (ret)
		kexec_store_close(s, true);
	else
		pr_info("store '%s' found at %s\n", s->name, s->dir);
	return ret;
}

/* The name NAME of a tmpfs mounted with pkram=NAME, from its options. */
static int pkram_name(const char *sopts, char *name, size_t len)
{
	for (const char *p = sopts; (p = strstr(p, "pkram=")); p++) {
		size_t n;

		if (p != sopts && p[-1] != ',')
			continue;
		p += strlen("pkram=");
		n = strcspn(p, ",");
		if (n >= len)
			return -ENAMETOOLONG;
		memcpy(name, p, n);
		name[n] = '\0';
		return 0;
	}
	return -ENOENT;
}

int kexec_store_adopt(struct kexec_store *s, const char *dir)
{
	char sopts[512], real[PATH_MAX];
	int ret;

	memset(s, 0, sizeof(*s));
	s->dirfd = -1;
	s->own = true;
	if (!realpath(dir, real)) {
		pr_perror("--preserve-mount %s", dir);
		return -errno;
	}
	ret = mounted_at(real, sopts, sizeof(sopts));
	if (ret < 0)
		return ret;
	if (ret != 1 || pkram_name(sopts, s->name, sizeof(s->name)) ||
	    kexec_store_name_ok(s->name)) {
		pr_err("--preserve-mount %s: not the root of a tmpfs mounted with pkram=NAME\n",
		       real);
		return -EINVAL;
	}
	if (!strncmp(real, KEXEC_STORE_ROOT "/", strlen(KEXEC_STORE_ROOT) + 1)) {
		pr_err("--preserve-mount %s: that is an image store, not the tree's\n", real);
		return -EINVAL;
	}
	snprintf(s->dir, sizeof(s->dir), "%s", real);
	ret = store_open(s);
	if (!ret)
		pr_info("the tree's tmpfs '%s' at %s is preserved too\n", s->name, s->dir);
	return ret;
}

int kexec_store_find_at(struct kexec_store *s, const char *name, const char *dir)
{
	char sopts[512];
	int ret = kexec_store_name_ok(name);

	memset(s, 0, sizeof(*s));
	s->dirfd = -1;
	s->own = true;
	if (ret)
		return ret;
	if (!path_no_dots(dir) || strlen(dir) >= sizeof(s->dir) ||
	    !strncmp(dir, KEXEC_STORE_ROOT "/", strlen(KEXEC_STORE_ROOT) + 1)) {
		pr_err("a preserved mount at '%s': not an absolute path of the tree's\n", dir);
		return -EINVAL;
	}
	snprintf(s->name, sizeof(s->name), "%s", name);
	snprintf(s->dir, sizeof(s->dir), "%s", dir);
	ret = mounted_at(dir, sopts, sizeof(sopts));
	if (ret < 0)
		return ret;
	if (ret == 2 || (ret == 1 && !has_pkram_opt(sopts, name))) {
		pr_err("%s holds another mount, not the preserved tmpfs pkram=%s\n", dir, name);
		return -EBUSY;
	}
	if (!ret) {
		if (mkdir_p(dir, 0755)) {
			pr_perror("can't create %s", dir);
			return -errno;
		}
		ret = store_mount(s);
	}
	if (!ret)
		ret = store_open(s);
	if (!ret && dir_empty(s->dirfd)) {
		pr_err("the tree's tmpfs '%s' came back empty at %s: nothing was preserved under "
		       "that name\n", name, dir);
		ret = -ENOENT;
		if (s->mounted)
			umount2(dir, 0);
		s->mounted = false;
	}
	if (ret) {
		kexec_store_close(s, false);
		return ret;
	}
	pr_info("the tree's tmpfs '%s' is back at %s\n", name, dir);
	return 0;
}

/* Reconfigures the store's super block with flags @f..., reporting the kernel's reason. */
static int store_reconfigure(struct kexec_store *s, const char *const *flags)
{
	cleanup_close int fd = syscall(SYS_fspick, s->dirfd, "",
				       KX_FSPICK_CLOEXEC | KX_FSPICK_EMPTY_PATH);
	int ret = 0;

	if (fd < 0) {
		pr_perror("fspick %s", s->dir);
		return -errno;
	}
	for (; *flags && !ret; flags++)
		if (syscall(SYS_fsconfig, fd, KX_FSCONFIG_SET_FLAG, *flags, NULL, 0))
			ret = -errno;
	if (!ret && syscall(SYS_fsconfig, fd, KX_FSCONFIG_CMD_RECONFIGURE, NULL, NULL, 0))
		ret = -errno;
	if (ret) {
		char msg[512];
		ssize_t n;

		pr_err("remount %s of %s failed: %s\n", flags[0], s->dir, strerror(-ret));
		/* the fs context's messages: "e pkram: cannot preserve ..." */
		while ((n = read(fd, msg, sizeof(msg) - 1)) > 0) {
			msg[n] = '\0';
			pr_err("kernel: %s\n", msg);
		}
	}
	return ret;
}

static int read_pfn(unsigned long *pfn)
{
	cleanup_free char *buf = read_file_at(AT_FDCWD, PKRAM_SYSFS, NULL);
	char *end;

	if (!buf) {
		pr_perror("can't read %s", PKRAM_SYSFS);
		return -errno;
	}
	errno = 0;
	*pfn = strtoul(buf, &end, 10);
	if (errno || end == buf || !*pfn) {
		pr_err("%s says '%s': no preserved super block\n", PKRAM_SYSFS, buf);
		return -EIO;
	}
	return 0;
}

int kexec_store_preserve(struct kexec_store *s, unsigned long *pfn)
{
	static const char *const preserve[] = { "ro", "preserve", NULL };
	int ret;

	/* the caller's dirfd stays open: read-only, it does not stop the remount */
	ret = store_reconfigure(s, preserve);
	if (ret)
		return ret;
	s->preserved = true;
	ret = read_pfn(pfn);
	if (ret) {
		kexec_store_unpreserve(s);
		return ret;
	}
	pr_info("store '%s' preserved, super block pfn %lu\n", s->name, *pfn);
	return 0;
}

int kexec_store_unpreserve(struct kexec_store *s)
{
	static const char *const rw[] = { "rw", NULL };
	int ret;

	if (!s->preserved)
		return 0;
	ret = store_reconfigure(s, rw);
	if (!ret) {
		s->preserved = false;
		pr_info("store '%s' is read-write again; nothing is preserved\n", s->name);
	}
	return ret;
}

void kexec_store_close(struct kexec_store *s, bool umount)
{
	if (s->dirfd >= 0)
		close(s->dirfd);
	s->dirfd = -1;
	if (!umount || s->preserved || s->kept)
		return;
	if (s->mounted && umount2(s->dir, 0)) {
		pr_warn("can't unmount %s: %s\n", s->dir, strerror(errno));
		return;
	}
	s->mounted = false;
	/* our mount point; left alone if something else is in it */
	if (s->dir[0] && !s->own)
		rmdir(s->dir);
}
