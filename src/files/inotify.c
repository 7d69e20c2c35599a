// SPDX-License-Identifier: MIT
/*
 * inotify instances with their watches, by path as CRIU does.
 *
 * Dump: each "inotify wd:" line of /proc/PID/fdinfo gives a watch: its
 * wd, mask, inode and a file handle. The handle is opened on a mount of
 * its file system (open_by_handle_at) and the path read back; the path
 * and the handle go in the image. A watched inode with no path (deleted)
 * is refused.
 * Restore: a new inotify; the watches are added by path in the order of
 * their wds, each added and removed again until the kernel (which hands
 * out wds one after another) gives it its saved wd; the IN_IGNORED events
 * that leaves are read away. Events queued at dump time are not saved.
 */
#define LOG_PREFIX "inotify: "
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "fdinfo.pb-c.h"
#include "files/files_internal.h"
#include "fsnotify.pb-c.h"

#define FH_WORDS   16 /* CRIU's fh_entry_sizes.min_entries: 128 bytes */
#define MAX_WD	   (1 << 20) /* the restore adds and removes a watch up to this often */
#define KDEV_MAJOR(d) ((d) >> 20)
#define KDEV_MINOR(d) ((d) & 0xfffff)

struct watch {
	uint32_t wd, mask, ignored, sdev, fh_bytes, fh_type;
	uint64_t ino;
	uint64_t handle[FH_WORDS];
	char path[PATH_MAX];
};

/* ---- dump ---- */

static bool inotify_match(const struct fd_desc *d)
{
	return !strcmp(d->link, "anon_inode:inotify");
}

static int parse_watch(const char *p, struct watch *w)
{
	unsigned long long ino;
	int n = 0;

	if (sscanf(p, "inotify wd:%x ino:%llx sdev:%x mask:%x ignored_mask:%x fhandle-bytes:%x fhandle-type:%x f_handle:%n",
		   &w->wd, &ino, &w->sdev, &w->mask, &w->ignored, &w->fh_bytes, &w->fh_type, &n) != 7 ||
	    !n || w->fh_bytes > FH_WORDS * 8)
		return -EIO;
	w->ino = ino;
	for (uint32_t i = 0; i < w->fh_bytes; i++) {
		unsigned int b;

		if (sscanf(p + n + 2 * i, "%2x", &b) != 1)
			return -EIO;
		((uint8_t *)w->handle)[i] = b;
	}
	return 0;
}

/* An fd on a mount of the file system with kernel dev @sdev (its root first). */
static int mount_of(uint32_t sdev)
{
	cleanup_free char *buf = read_proc(0 /* self */, "mountinfo", NULL);
	char best[PATH_MAX] = "";

	for (char *rest = buf, *p; (p = next_line(&rest));) {
		unsigned int maj, min;
		char root[PATH_MAX], mnt[PATH_MAX];

		if (sscanf(p, "%*d %*d %u:%u %4095s %4095s", &maj, &min, root, mnt) != 4 ||
		    maj != KDEV_MAJOR(sdev) || min != KDEV_MINOR(sdev))
			continue;
		if (!best[0] || !strcmp(root, "/"))
			snprintf(best, sizeof(best), "%s", mnt);
		if (!strcmp(root, "/"))
			break;
	}
	return best[0] ? open(best, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
}

/*
 * The path of inode @ino (file system @sdev, in the kernel's encoding)
 * through its file handle: 0, or -ENOTSUP with whatever path was found
 * (a deleted one) left in @path. fanotify.c finds its marks' so too.
 */
int files_fhandle_path(uint32_t sdev, uint32_t bytes, uint32_t type, const void *handle,
		       uint64_t ino, char *path, size_t len)
{
	struct {
		struct file_handle h;
		uint8_t bytes[FH_WORDS * 8];
	} fh = { .h = { .handle_bytes = bytes, .handle_type = type } };
	cleanup_close int mfd = mount_of(sdev), fd = -1;
	char proc[64];
	struct stat st;
	ssize_t n;

	path[0] = '\0';
	if (bytes > FH_WORDS * 8)
		return -ENOTSUP;
	memcpy(fh.h.f_handle, handle, bytes);
	if (mfd >= 0)
		fd = open_by_handle_at(mfd, &fh.h, O_PATH | O_CLOEXEC);
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	n = fd < 0 ? -1 : readlink(proc, path, len - 1);
	if (n > 0)
		path[n] = '\0';
	if (n <= 0 || fstat(fd, &st) || st.st_ino != ino || path[0] != '/' ||
	    strstr(path, " (deleted)"))
		return -ENOTSUP;
	return 0;
}

/* The watched inode's path, through its file handle. */
static int watch_path(const struct fd_desc *d, struct watch *w)
{
	int ret = files_fhandle_path(w->sdev, w->fh_bytes, w->fh_type, w->handle, w->ino, w->path,
				     sizeof(w->path));

	if (ret)
		pr_err("fd %d of pid %d: inotify watch %u on inode %" PRIu64 " has no path%s%s: not supported\n",
		       d->fd, d->pid, w->wd, w->ino, w->path[0] ? ": " : "", w->path);
	return ret;
}

static int write_inotify(struct files_dump_ctx *fc, const struct fd_desc *d, struct watch *w,
			 int nr, uint32_t id)
{
	InotifyFileEntry ie = INOTIFY_FILE_ENTRY__INIT;
	FownEntry fown = FOWN_ENTRY__INIT;
	FileEntry fe = FILE_ENTRY__INIT;
	cleanup_free InotifyWdEntry *we = calloc(nr + 1, sizeof(*we));
	cleanup_free InotifyWdEntry **wp = calloc(nr + 1, sizeof(*wp));
	cleanup_free FhEntry *fh = calloc(nr + 1, sizeof(*fh));

	if (!we || !wp || !fh)
		return -ENOMEM;
	for (int i = 0; i < nr; i++) {
		fh[i] = (FhEntry)FH_ENTRY__INIT;
		fh[i].bytes = w[i].fh_bytes;
		fh[i].type = w[i].fh_type;
		fh[i].n_handle = FH_WORDS;
		fh[i].handle = w[i].handle;
		fh[i].path = w[i].path;
		we[i] = (InotifyWdEntry)INOTIFY_WD_ENTRY__INIT;
		we[i].id = id;
		we[i].i_ino = w[i].ino;
		we[i].mask = w[i].mask;
		we[i].ignored_mask = w[i].ignored;
		we[i].s_dev = w[i].sdev;
		we[i].wd = w[i].wd;
		we[i].f_handle = &fh[i];
		wp[i] = &we[i];
		pr_debug("inotify %u: wd %u mask %#x on %s\n", id, w[i].wd, w[i].mask, w[i].path);
	}
	ie.id = id;
	ie.flags = d->flags;
	ie.fown = &fown;
	ie.n_wd = nr;
	ie.wd = wp;
	fe.type = FD_TYPES__INOTIFY;
	fe.id = id;
	fe.ify = &ie;
	return files_write_entry(fc, &fe);
}

static int inotify_dump(struct files_dump_ctx *fc, const struct fd_desc *d, uint32_t *id)
{
	char name[64];
	cleanup_free char *buf = NULL;
	cleanup_free struct watch *w = NULL;
	int lfd = files_peekfd(d);
	FownEntry fown;
	int nr = 0, ret;

	if (lfd < 0)
		return lfd;
	ret = files_dump_fown(d, lfd, &fown);
	snprintf(name, sizeof(name), "fdinfo/%d", d->fd);
	buf = ret ? NULL : read_proc(d->pid, name, NULL);
	if (!buf)
		return ret ? ret : -EIO;
	for (char *rest = buf, *p; (p = next_line(&rest));) {
		struct watch *n;

		if (strncmp(p, "inotify wd:", 11))
			continue;
		n = xrealloc_array(w, nr + 1, sizeof(*n));
		if (!n)
			return -ENOMEM;
		w = n;
		memset(&w[nr], 0, sizeof(w[nr]));
		if (parse_watch(p, &w[nr])) {
			pr_err("fd %d of pid %d: can't parse inotify fdinfo line: %.80s\n", d->fd, d->pid, p);
			return -EIO;
		}
		ret = watch_path(d, &w[nr++]);
		if (ret)
			return ret;
	}
	*id = files_new_id(fc);
	return write_inotify(fc, d, w, nr, *id);
}

/* ---- restore ---- */

static int check_inode(uint32_t id, const InotifyWdEntry *w);

static int inotify_check(struct files_rst_ctx *fc, const FileEntry *fe)
{
	const InotifyFileEntry *e = fe->ify;
	int ret = files_check_sub(fe, e, e ? e->id : 0);

	if (!ret)
		ret = files_check_fown(fe, e->fown);
	for (size_t i = 0; !ret && i < e->n_wd; i++) {
		const InotifyWdEntry *w = e->wd[i];

		/* CRIU 4.2 writes 0 for the id of a watch inside its inotify's entry */
		if ((w->id && w->id != fe->id) || !w->wd || w->wd > MAX_WD || !w->f_handle->path ||
		    w->f_handle->path[0] != '/') {
			pr_err("files.img: inotify %u: watch %u is malformed or has no path\n", fe->id,
			       w->wd);
			ret = -EINVAL;
		}
		for (size_t j = 0; !ret && j < i; j++)
			if (e->wd[j]->wd == w->wd)
				ret = files_check_sub(fe, false, 0);
		if (!ret)
			ret = check_inode(fe->id, w);
	}
	return ret;
}

/* The watched path must still be the watched inode. */
static int check_inode(uint32_t id, const InotifyWdEntry *w)
{
	const char *path = w->f_handle->path;
	struct stat st;

	if (lstat(path, &st)) {
		pr_perror("inotify %u: watch %u: %s", id, w->wd, path);
		return -ENOENT;
	}
	if (st.st_ino != w->i_ino) {
		pr_err("inotify %u: watch %u: %s is another inode now (%llu, not %llu)\n", id,
		       w->wd, path, (unsigned long long)st.st_ino, (unsigned long long)w->i_ino);
		return -ESTALE;
	}
	return 0;
}

/* Adds watch @w to @fd with its saved wd: the kernel hands wds out in turn. */
static int add_watch(int fd, uint32_t id, const InotifyWdEntry *w)
{
	const char *path = w->f_handle->path;
	int ret = check_inode(id, w);

	if (ret)
		return ret;
	for (;;) {
		int got = inotify_add_watch(fd, path, w->mask | IN_DONT_FOLLOW);

		if (got < 0) {
			pr_perror("inotify %u: can't watch %s", id, path);
			return -errno;
		}
		if ((uint32_t)got == w->wd)
			return 0;
		if ((uint32_t)got > w->wd || inotify_rm_watch(fd, got)) {
			pr_err("inotify %u: can't get wd %u for %s (got %d)\n", id, w->wd, path, got);
			return -EBUSY;
		}
	}
}

static int cmp_wd(const void *a, const void *b)
{
	uint32_t x = (*(InotifyWdEntry *const *)a)->wd, y = (*(InotifyWdEntry *const *)b)->wd;

	return x < y ? -1 : x > y;
}

static int inotify_open(struct files_rst_ctx *fc, struct rfile *rf)
{
	InotifyFileEntry *e = rf->fe->ify;
	int fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK), ret = 0;
	char buf[4096];

	if (fd < 0) {
		pr_perror("inotify %u: inotify_init1", e->id);
		return -errno;
	}
	if (e->n_wd)
		qsort(e->wd, e->n_wd, sizeof(*e->wd), cmp_wd);
	for (size_t i = 0; !ret && i < e->n_wd; i++)
		ret = add_watch(fd, e->id, e->wd[i]);
	/* The IN_IGNORED events of the watches removed on the way. */
	while (!ret && read(fd, buf, sizeof(buf)) > 0)
		;
	if (ret) {
		close(fd);
		return ret;
	}
	return fd;
}

static uint32_t inotify_flags(struct files_rst *fr, const FileEntry *fe)
{
	return fe->ify->flags;
}

const struct files_type files_inotify_type = {
	.type = FD_TYPES__INOTIFY,
	.name = "inotify",
	.match = inotify_match,
	.dump = inotify_dump,
	.check = inotify_check,
	.open = inotify_open,
	.flags = inotify_flags,
};
