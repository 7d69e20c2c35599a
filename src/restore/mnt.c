// SPDX-License-Identifier: MIT
/*
 * The tree's own mount namespace, made again from mountpoints-<id>.img
 * (dump/mnt.c) in the restored root before its children: a new mount
 * namespace, the --root directory bound as its root mount (or the saved
 * overlay mounted on it), each saved mount on it (parents first), then
 * pivot_root into it. Every path is
 * checked when the images are loaded, before anything is created, and
 * resolved inside the new root (RESOLVE_IN_ROOT) when it is used.
 */
#define LOG_PREFIX "mnt: "
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/log.h"
#include "base/overlay.h"
#include "base/util.h"
#include "image/image.h"
#include "restore/ns.h"
#include "restore/restore.h"
#include "mnt.pb-c.h"

/* Flags a bind remount can change (the rest belong to the superblock). */
#define MNT_FLAGS                                                                                  \
	(MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME | MS_RELATIME | \
	 MS_STRICTATIME)

static int find_mnt(const struct rst_mnt *m, uint32_t id)
{
	for (size_t i = 0; i < m->nr; i++)
		if (m->e[i]->mnt_id == id)
			return (int)i;
	return -1;
}

/* The first mount of the same filesystem from its top, to bind @i from. */
static int top_of(const struct rst_mnt *m, size_t i)
{
	for (size_t j = 1; j < m->nr; j++)
		if (j != i && m->e[j]->root_dev == m->e[i]->root_dev &&
		    !strcmp(m->e[j]->root, "/") && !m->e[j]->ext_key)
			return (int)j;
	return -1;
}

static bool fs_supported(uint32_t t)
{
	return t == FSTYPE__PROC || t == FSTYPE__SYSFS || t == FSTYPE__TMPFS ||
	       t == FSTYPE__DEVPTS || t == FSTYPE__MQUEUE || t == FSTYPE__CGROUP2 ||
	       t == FSTYPE__CGROUP || t == FSTYPE__OVERLAYFS;
}

struct layer_check {
	const char *img;
	const MntEntry *e;
};

/*
 * An overlay is mounted again with its saved options: its layers are
 * amber's paths, and the upper and work directories hold its changes.
 */
static int check_layer(const char *key, const char *path, void *arg)
{
	const struct layer_check *lc = arg;
	struct stat st;

	if (!ovl_path_ok(path)) {
		pr_err("%s: overlay mount %u on %s: its %s %s is not an absolute path\n", lc->img,
		       lc->e->mnt_id, lc->e->mountpoint, key, path);
		return -EINVAL;
	}
	if (stat(path, &st)) {
		pr_err("%s: overlay mount %u on %s: its %s %s is %s on this host: the overlay "
		       "can't be mounted again\n",
		       lc->img, lc->e->mnt_id, lc->e->mountpoint, key, path,
		       errno == ENOENT ? "missing" : strerror(errno));
		return -ENOENT;
	}
	if (!S_ISDIR(st.st_mode)) {
		pr_err("%s: overlay mount %u on %s: its %s %s is not a directory\n", lc->img,
		       lc->e->mnt_id, lc->e->mountpoint, key, path);
		return -ENOTDIR;
	}
	return 0;
}

static int check_overlay(const char *img, const MntEntry *e)
{
	return ovl_for_each_layer(e->options, check_layer,
				  &(struct layer_check){.img = img, .e = e});
}

/*
 * A saved overlay root is mounted again on --root, unless the caller
 * (runc, podman) already mounted an overlay there: the container's.
 */
static int root_is_overlay_mount(const char *root, bool *yes)
{
	struct statx stx;
	struct statfs sfs;

	if (statx(AT_FDCWD, root, 0, STATX_BASIC_STATS, &stx) || statfs(root, &sfs)) {
		pr_perror("can't stat the root %s", root);
		return -errno;
	}
	*yes = (stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) &&
	       (stx.stx_attributes & STATX_ATTR_MOUNT_ROOT) &&
	       (unsigned long)sfs.f_type == OVERLAYFS_MAGIC;
	return 0;
}

/* Each mount's way of being made again, and the order: parents first. */
static int check_mnts(struct rst_ctx *rc, struct rst_mnt *m)
{
	const char *img = m->img_name;
	size_t done = 1;
	bool *placed, has_proc = false;

	if (!m->nr || strcmp(m->e[0]->mountpoint, "/") ||
	    find_mnt(m, m->e[0]->parent_mnt_id) >= 0) {
		pr_err("%s: its first mount is not the namespace's root mount on /\n", img);
		return -EINVAL;
	}
	for (size_t i = 1; i < m->nr; i++) {
		MntEntry *e = m->e[i];

		if (!path_no_dots(e->mountpoint) || !path_no_dots(e->root)) {
			pr_err(
			    "%s: mount %u on %s (root %s): a path outside the container's root\n",
			    img, e->mnt_id, e->mountpoint, e->root);
			return -EINVAL;
		}
		if (find_mnt(m, e->mnt_id) != (int)i || find_mnt(m, e->parent_mnt_id) < 0) {
			pr_err("%s: mount %u on %s: its id or its parent's (%u) is wrong\n", img,
			       e->mnt_id, e->mountpoint, e->parent_mnt_id);
			return -EINVAL;
		}
		if (e->ext_key) {
			const char *v =
			    ext_mount_lookup(rc->opts->ext_mnts, rc->opts->nr_ext_mnts, e->ext_key);

			if (!v || v[0] != '/') {
				pr_err("%s: mount on %s is the external %s: the restore needs "
				       "--ext-mount-map %s:PATH (or --external mnt[%s]:PATH)\n",
				       img, e->mountpoint, e->ext_key, e->ext_key, e->ext_key);
				return -EINVAL;
			}
		} else if (strcmp(e->root, "/") ? top_of(m, i) < 0 : !fs_supported(e->fstype)) {
			pr_err("%s: mount %u on %s (fstype %u, root %s) cannot be made again\n",
			       img, e->mnt_id, e->mountpoint, e->fstype, e->root);
			return -EINVAL;
		} else if (!strcmp(e->root, "/") && e->fstype == FSTYPE__CGROUP && rc->ns.user) {
			pr_err("%s: mount %u on %s: cgroup v1 in the tree's user namespace: only "
			       "the host's root may mount it\n", img, e->mnt_id, e->mountpoint);
			return -EOPNOTSUPP;
		} else if (!strcmp(e->root, "/") && e->fstype == FSTYPE__OVERLAYFS) {
			int ret = check_overlay(img, e);

			if (ret)
				return ret;
		}
	}
	/*
	 * The restore code in each task reads /proc/self: a namespace
	 * without a proc on /proc would fail there, after the forks.
	 */
	for (size_t i = 1; i < m->nr && !has_proc; i++)
		has_proc = m->e[i]->fstype == FSTYPE__PROC && !m->e[i]->ext_key &&
			   !strcmp(m->e[i]->root, "/") && !strcmp(m->e[i]->mountpoint, "/proc");
	if (!has_proc) {
		pr_err("%s: no proc on /proc: amber restores a mount namespace that has one\n",
		       img);
		return -EOPNOTSUPP;
	}
	/* Parents, and the mounts binds come from, before: no cycle. */
	m->order = calloc(m->nr, sizeof(*m->order));
	placed = calloc(m->nr, sizeof(*placed));
	if (!m->order || !placed) {
		free(placed);
		return -ENOMEM;
	}
	placed[0] = true;
	while (done < m->nr) {
		size_t before = done;

		for (size_t i = 1; i < m->nr; i++) {
			int top =
			    m->e[i]->ext_key || !strcmp(m->e[i]->root, "/") ? -1 : top_of(m, i);

			if (placed[i] || !placed[find_mnt(m, m->e[i]->parent_mnt_id)] ||
			    (top >= 0 && !placed[top]))
				continue;
			placed[i] = true;
			m->order[done++] = i;
		}
		if (done == before) {
			free(placed);
			pr_err("%s: mounts whose parents form a cycle\n", img);
			return -EINVAL;
		}
	}
	free(placed);
	return 0;
}

/*
 * amber writes the root mount first; CRIU 4.2 writes children before
 * parents, the root last. Move the root (the mount on / whose parent is
 * not in the image) to the front; check_mnts() orders the rest.
 */
static void root_first(struct rst_mnt *m)
{
	for (size_t i = 1; i < m->nr; i++) {
		MntEntry *root = m->e[i];

		if (strcmp(root->mountpoint, "/") || find_mnt(m, root->parent_mnt_id) >= 0)
			continue;
		memmove(&m->e[1], &m->e[0], i * sizeof(*m->e));
		m->e[0] = root;
		return;
	}
}

int rst_mnt_load(struct rst_ctx *rc, uint32_t id)
{
	struct rst_mnt *m = &rc->ns.mnt;
	struct img *img;
	int ret = 0;

	img_name(IMG_MNTS, id, m->img_name, sizeof(m->img_name));
	if (!rc->opts->root || rc->opts->root[0] != '/') {
		pr_err("%s: the tree has a mount namespace of its own: the restore needs its "
		       "root directory (--root)\n",
		       m->img_name);
		return -EINVAL;
	}
	img = img_open(rc->dirfd, IMG_MNTS, false, id);
	if (!img)
		return -errno;
	for (;;) {
		MntEntry *e, **p;

		ret = img_read_msg(img, &mnt_entry__descriptor, (ProtobufCMessage **)&e);
		if (ret <= 0)
			break;
		p = xrealloc_array(m->e, m->nr + 1, sizeof(*p));
		if (!p) {
			mnt_entry__free_unpacked(e, NULL);
			ret = -ENOMEM;
			break;
		}
		m->e = p;
		m->e[m->nr++] = e;
	}
	img_close(img);
	if (ret < 0) {
		pr_err("%s can't be read\n", m->img_name);
		return ret;
	}
	root_first(m);
	ret = check_mnts(rc, m);
	if (!ret && m->e[0]->fstype == FSTYPE__OVERLAYFS && !strcmp(m->e[0]->root, "/")) {
		bool mounted;

		ret = root_is_overlay_mount(rc->opts->root, &mounted);
		m->root_overlay = !ret && !mounted;
		if (m->root_overlay)
			ret = check_overlay(m->img_name, m->e[0]);
		if (!ret)
			pr_info("%s: the root overlay %s\n", m->img_name,
				mounted ? "is the one mounted on --root" : "is mounted again");
	}
	if (!ret)
		pr_info("%s: %zu mounts under %s\n", m->img_name, m->nr, rc->opts->root);
	return ret;
}

void rst_mnt_free(struct rst_mnt *m)
{
	for (size_t i = 0; m->tmpfs_imgs && i < m->nr; i++)
		if (m->tmpfs_imgs[i] >= 0)
			close(m->tmpfs_imgs[i]);
	free(m->tmpfs_imgs);
	m->tmpfs_imgs = NULL;
	for (size_t i = 0; i < m->nr; i++)
		mnt_entry__free_unpacked(m->e[i], NULL);
	free(m->e);
	free(m->order);
	m->e = NULL;
	m->order = NULL;
	m->nr = 0;
}

/* @path under @root (an fd), no symlink leading out of it: an O_PATH fd. */
static int open_in_root(int root, const char *path, int flags)
{
	struct open_how how = {.flags = O_PATH | O_CLOEXEC | flags,
			       .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS};

	return syscall(SYS_openat2, root, path[1] ? path + 1 : ".", &how, sizeof(how));
}

/* The mountpoint @path under @root, made (a directory, or a file for @file) if missing. */
static int mountpoint_fd(int root, const char *path, bool file)
{
	cleanup_free char *dir = strdup(path);
	char *base;
	int fd = open_in_root(root, path, 0), pfd;

	if (fd >= 0 || errno != ENOENT || !dir)
		return fd;
	base = strrchr(dir, '/');
	*base++ = 0;
	pfd = open_in_root(root, dir[0] ? dir : "/", O_DIRECTORY);
	if (pfd < 0)
		return -1;
	/* O_PATH fds can't be created through: reopen the parent for real. */
	fd = openat(pfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	close(pfd);
	if (fd < 0)
		return -1;
	if (file) {
		int f = openat(fd, base, O_CREAT | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0644);

		if (f >= 0)
			close(f);
	} else {
		mkdirat(fd, base, 0755);
	}
	close(fd);
	return open_in_root(root, path, 0);
}

/*
 * The saved files of a tmpfs, extracted by tar as CRIU's images are
 * made. Untraced: amber traces this task and every child it forks.
 */
static int untar(struct rst_ctx *rc, int dirfd, const char *target, size_t i)
{
	char name[64];
	int fd = rc->ns.mnt.tmpfs_imgs ? rc->ns.mnt.tmpfs_imgs[i] : -1, st;
	pid_t pid;

	img_name(IMG_TMPFS_DEV, rc->ns.mnt.e[i]->root_dev, name, sizeof(name));
	if (fd < 0)
		return 0;
	rc->ns.mnt.tmpfs_imgs[i] = -1;
	pid = syscall(SYS_clone, SIGCHLD | CLONE_UNTRACED, 0, 0, 0, 0);
	if (pid == 0) {
		if (dup2(fd, 0) < 0 || fchdir(dirfd))
			_exit(126);
		execlp("tar", "tar", "--extract", "--gzip", "--no-unquote", "--no-wildcards",
		       "--directory", ".", (char *)NULL);
		_exit(127);
	}
	close(fd);
	if (pid < 0 || waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st)) {
		pr_err("%s: tar into %s failed\n", name, target);
		return -EIO;
	}
	return 0;
}

static const char *fs_name(uint32_t t)
{
	switch (t) {
	case FSTYPE__PROC:
		return "proc";
	case FSTYPE__SYSFS:
		return "sysfs";
	case FSTYPE__TMPFS:
		return "tmpfs";
	case FSTYPE__DEVPTS:
		return "devpts";
	case FSTYPE__MQUEUE:
		return "mqueue";
	case FSTYPE__OVERLAYFS:
		return OVL_FSTYPE_NAME;
	case FSTYPE__CGROUP:
		return "cgroup";
	default:
		return "cgroup2";
	}
}

/*
 * A read-only superblock again, but only a new one: sysfs's in a network
 * namespace of the tree's own (the host's sysfs is shared otherwise), an
 * overlay's always (a read-only overlay has no upper layer to write).
 */
static unsigned long sb_ro(const struct rst_ctx *rc, const MntEntry *e)
{
	bool own = e->fstype == FSTYPE__OVERLAYFS || (e->fstype == FSTYPE__SYSFS && rst_net_own(&rc->ns.net));

	return own && e->has_sb_flags && (e->sb_flags & MS_RDONLY) ? MS_RDONLY : 0;
}

/* mountinfo names no atime flag for strictatime; the kernel's default is relatime. */
static unsigned long new_mount_flags(const MntEntry *e)
{
	unsigned long flags = e->flags & MNT_FLAGS & ~MS_RDONLY;

	return flags & (MS_RELATIME | MS_NOATIME) ? flags : flags | MS_STRICTATIME;
}

static int mount_one(struct rst_ctx *rc, int rootfd, const char *root, size_t i)
{
	struct rst_mnt *m = &rc->ns.mnt;
	MntEntry *e = m->e[i];
	char src[PATH_MAX], target[64];
	struct stat st;
	bool bind = e->ext_key || strcmp(e->root, "/");
	unsigned long flags = new_mount_flags(e);
	int fd, ret = 0, srcfd = -1;

	if (e->ext_key) {
		snprintf(src, sizeof(src), "%s",
			 ext_mount_lookup(rc->opts->ext_mnts, rc->opts->nr_ext_mnts, e->ext_key));
	} else if (bind) {
		MntEntry *top = m->e[top_of(m, i)];

		/*
		 * Inside the new root: a symlink in a restored tmpfs must not
		 * make the source a file of the host's.
		 */
		snprintf(src, sizeof(src), "%s%s", top->mountpoint, e->root);
		srcfd = open_in_root(rootfd, src, 0);
		if (srcfd < 0) {
			pr_perror("can't find %s under %s to bind on %s", src, root, e->mountpoint);
			return -errno;
		}
		snprintf(src, sizeof(src), "/proc/self/fd/%d", srcfd);
	}
	fd = mountpoint_fd(rootfd, e->mountpoint, bind && !stat(src, &st) && !S_ISDIR(st.st_mode));
	if (fd < 0) {
		ret = -errno;
		pr_perror("can't find or make the mountpoint %s under %s", e->mountpoint, root);
		if (srcfd >= 0)
			close(srcfd);
		return ret;
	}
	snprintf(target, sizeof(target), "/proc/self/fd/%d", fd);
	if (bind) {
		/*
		 * In the tree's user namespace the mounts under a source are
		 * locked to it (a host's /sys bound in): it is bound with them,
		 * and the saved ones go on top.
		 */
		if (mount(src, target, NULL, MS_BIND, NULL) &&
		    (errno != EINVAL || !rc->ns.user || mount(src, target, NULL, MS_BIND | MS_REC, NULL)))
			ret = -errno;
		if (srcfd >= 0)
			close(srcfd);
		close(fd);
		/* Resolved again: the fd names the directory under the new mount. */
		fd = ret ? -1 : open_in_root(rootfd, e->mountpoint, 0);
		snprintf(target, sizeof(target), "/proc/self/fd/%d", fd);
		if (!ret && (fd < 0 || (flags && mount(NULL, target, NULL,
						       MS_BIND | MS_REMOUNT | flags, NULL))))
			ret = -errno;
	} else if (mount(e->source, target, fs_name(e->fstype), flags | sb_ro(rc, e),
			 e->options[0] ? e->options : NULL)) {
		ret = -errno;
		/*
		 * mountinfo shows a named cgroup v1 hierarchy without the
		 * "none" (no controller) that mounting it takes.
		 */
		if (ret == -EINVAL && e->fstype == FSTYPE__CGROUP && strstr(e->options, "name=")) {
			char opts[PATH_MAX];

			snprintf(opts, sizeof(opts), "none,%s", e->options);
			if (!mount(e->source, target, "cgroup", flags, opts))
				ret = 0;
		}
	}
	if (fd >= 0)
		close(fd);
	if (ret) {
		pr_err("can't mount %s on %s: %s\n", bind ? src : fs_name(e->fstype), e->mountpoint,
		       strerror(-ret));
		return ret;
	}
	/* The container's terminal, before a bind of its slave (/dev/console). */
	if (!bind && e->fstype == FSTYPE__DEVPTS) {
		fd = open_in_root(rootfd, e->mountpoint, O_DIRECTORY);
		ret = fd < 0 ? -errno : files_pty_devpts_mounted(&rc->files, fd, e->root_dev);
		if (fd >= 0)
			close(fd);
		if (ret)
			return ret;
	}
	if (!bind && e->fstype == FSTYPE__TMPFS) {
		/* Resolved again: a path the kernel shows for the new mount. */
		fd = open_in_root(rootfd, e->mountpoint, O_DIRECTORY);
		ret = fd < 0 ? -errno : untar(rc, fd, e->mountpoint, i);
		if (fd >= 0)
			close(fd);
	}
	return ret;
}

/* Read-only, shared: once everything is mounted, children first. */
static int finish_one(int rootfd, MntEntry *e, bool is_root)
{
	char target[64];
	int fd = open_in_root(rootfd, e->mountpoint, 0), ret = 0;

	if (fd < 0)
		return -errno;
	snprintf(target, sizeof(target), "/proc/self/fd/%d", fd);
	/*
	 * Only a tmpfs's superblock is surely the tree's own: sysfs, mqueue
	 * share theirs with the host when the tree shares its namespace, and
	 * the mount's own read-only flag below is what the tree sees anyway.
	 */
	if (!is_root && !e->ext_key && e->fstype == FSTYPE__TMPFS && !strcmp(e->root, "/") &&
	    e->has_sb_flags && (e->sb_flags & MS_RDONLY) &&
	    mount(NULL, target, NULL, MS_REMOUNT | MS_RDONLY, e->options[0] ? e->options : NULL))
		ret = -errno;
	if (!ret && (e->flags & MS_RDONLY) &&
	    mount(NULL, target, NULL, MS_BIND | MS_REMOUNT | (e->flags & MNT_FLAGS), NULL))
		ret = -errno;
	if (!ret && e->has_shared_id && e->shared_id && mount(NULL, target, NULL, MS_SHARED, NULL))
		ret = -errno;
	close(fd);
	if (ret)
		pr_err("can't make %s read-only or shared: %s\n", e->mountpoint, strerror(-ret));
	return ret;
}

int rst_mnt_open_images(struct rst_ctx *rc, int base)
{
	struct rst_mnt *m = &rc->ns.mnt;

	if (!m->nr)
		return 0;
	m->tmpfs_imgs = malloc(m->nr * sizeof(*m->tmpfs_imgs));
	if (!m->tmpfs_imgs)
		return -ENOMEM;
	for (size_t i = 0; i < m->nr; i++)
		m->tmpfs_imgs[i] = -1;
	for (size_t i = 0; i < m->nr; i++) {
		char name[64];
		int fd;

		if (m->e[i]->fstype != FSTYPE__TMPFS)
			continue;
		img_name(IMG_TMPFS_DEV, m->e[i]->root_dev, name, sizeof(name));
		fd = openat(rc->dirfd, name, O_RDONLY | O_CLOEXEC);
		if (fd < 0 && errno == ENOENT)
			continue;
		if (fd >= 0) {
			m->tmpfs_imgs[i] = fcntl(fd, F_DUPFD_CLOEXEC, base);
			close(fd);
		}
		if (fd < 0 || m->tmpfs_imgs[i] < 0) {
			pr_perror("can't open %s", name);
			return -errno;
		}
	}
	return 0;
}

int rst_mnt_enter_root(struct rst_ctx *rc)
{
	struct rst_mnt *m = &rc->ns.mnt;
	const char *root = rc->opts->root;
	MntEntry *top = m->e[0];

	if (m->root_made)
		return 0;
	/* Private first: nothing done here reaches amber's mounts. */
	if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL)) {
		pr_perror("can't make a mount namespace of the tree's own");
		return -errno;
	}
	if (m->root_overlay ? mount(top->source, root, OVL_FSTYPE_NAME,
				    new_mount_flags(top) | sb_ro(rc, top), top->options)
			    : mount(root, root, NULL, MS_BIND, NULL)) {
		pr_perror("can't %s %s as the tree's root",
			  m->root_overlay ? "mount the saved overlay on" : "bind", root);
		return -errno;
	}
	m->root_fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (m->root_fd < 0) {
		pr_perror("can't open the tree's root %s", root);
		return -errno;
	}

	m->root_made = true;
	return 0;
}

int rst_mnt_enter(struct rst_ctx *rc)
{
	struct rst_mnt *m = &rc->ns.mnt;
	const char *root = rc->opts->root;
	int rootfd, ret = rst_mnt_enter_root(rc);

	if (ret)
		return ret;
	rootfd = m->root_fd;
	for (size_t k = 1; k < m->nr && !ret; k++)
		ret = mount_one(rc, rootfd, root, m->order[k]);
	for (size_t k = m->nr; k-- > 0 && !ret;)
		ret = finish_one(rootfd, m->e[m->order[k]], k == 0);
	/* By the fd: the tree's own user's root may not search the way to it. */
	if (!ret && fchdir(rootfd))
		ret = -errno;
	close(rootfd);
	if (ret)
		return ret;
	if (syscall(SYS_pivot_root, ".", ".") || umount2(".", MNT_DETACH) ||
	    chdir("/")) {
		pr_perror("can't pivot_root into %s", root);
		return -errno;
	}
	return 0;
}
