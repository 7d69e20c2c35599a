// SPDX-License-Identifier: MIT
/*
 * fanotify groups with their marks, as CRIU keeps them
 * (fanotify_file_entry in files.img, its marks inside it).
 *
 * Dump: /proc/PID/fdinfo has the group's fanotify_init() flags and event
 * flags, and a line per mark: an inode mark with its inode, file system
 * and file handle (its path found through the handle, as for inotify),
 * or a mount mark with its mount id (the mount point's path read from
 * mountinfo). A mark on a whole file system (FAN_MARK_FILESYSTEM) has no
 * place in CRIU's format and is refused, as is an inode with no path.
 * Restore: fanotify_init() again (its flags as they were: FAN_CLOEXEC too;
 * the fd is dup'ed with its own), then each mark added by path with its
 * FAN_MARK_* flags, its mask and its ignored mask. Events queued at dump
 * time (and permission events waiting for an answer) are not saved.
 */
#define LOG_PREFIX "fanotify: "
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fanotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "fdinfo.pb-c.h"
#include "files/files_internal.h"
#include "fsnotify.pb-c.h"

#define FH_WORDS 16 /* CRIU's fh_entry_sizes.min_entries: 128 bytes */

struct mark {
	bool mount;
	uint32_t mnt_id, sdev, mflags, mask, ignored, fh_bytes, fh_type;
	uint64_t ino;
	uint64_t handle[FH_WORDS];
	char path[PATH_MAX];
};

/* ---- dump ---- */

static bool fanotify_match(const struct fd_desc *d)
{
	return !strcmp(d->link, "anon_inode:[fanotify]");
}

static int parse_inode_mark(const char *p, struct mark *m)
{
	unsigned long long ino;
	int n = 0;

	if (sscanf(p, "fanotify ino:%llx sdev:%x mflags:%x mask:%x ignored_mask:%x fhandle-bytes:%x fhandle-type:%x f_handle:%n",
		   &ino, &m->sdev, &m->mflags, &m->mask, &m->ignored, &m->fh_bytes, &m->fh_type,
		   &n) != 7 || !n || m->fh_bytes > FH_WORDS * 8)
		return -EIO;
	m->ino = ino;
	for (uint32_t i = 0; i < m->fh_bytes; i++) {
		unsigned int b;

		if (sscanf(p + n + 2 * i, "%2x", &b) != 1)
			return -EIO;
		((uint8_t *)m->handle)[i] = b;
	}
	return 0;
}

/* The mount point of mount @mnt_id, as amber sees it. */
static int mount_path(uint32_t mnt_id, char *path, size_t len)
{
	cleanup_free char *buf = read_proc(0 /* self */, "mountinfo", NULL);

	for (char *rest = buf, *p; (p = next_line(&rest));) {
		char mnt[PATH_MAX];
		unsigned int id;

		if (sscanf(p, "%u %*d %*u:%*u %*s %4095s", &id, mnt) == 2 && id == mnt_id) {
			snprintf(path, len, "%s", mnt);
			return 0;
		}
	}
	return -ENOENT;
}

static int parse_mark(const struct fd_desc *d, const char *p, struct mark *m)
{
	int ret;

	if (!strncmp(p, "fanotify mnt_id:", 16)) {
		m->mount = true;
		if (sscanf(p, "fanotify mnt_id:%x mflags:%x mask:%x ignored_mask:%x", &m->mnt_id,
			   &m->mflags, &m->mask, &m->ignored) != 4)
			return -EIO;
		ret = mount_path(m->mnt_id, m->path, sizeof(m->path));
		if (ret)
			pr_err("fd %d of pid %d: fanotify mark on mount %u, which amber can't see\n",
			       d->fd, d->pid, m->mnt_id);
		return ret ? -ENOTSUP : 0;
	}
	if (!strncmp(p, "fanotify sdev:", 14)) {
		pr_err("fd %d of pid %d: a fanotify mark on a whole file system (FAN_MARK_FILESYSTEM) "
		       "is not supported (CRIU's format has no place for it)\n", d->fd, d->pid);
		return -ENOTSUP;
	}
	if (parse_inode_mark(p, m))
		return -EIO;
	ret = files_fhandle_path(m->sdev, m->fh_bytes, m->fh_type, m->handle, m->ino, m->path,
				 sizeof(m->path));
	if (ret)
		pr_err("fd %d of pid %d: fanotify mark on inode %" PRIu64 " has no path%s%s: not supported\n",
		       d->fd, d->pid, m->ino, m->path[0] ? ": " : "", m->path);
	return ret;
}

static int write_fanotify(struct files_dump_ctx *fc, const struct fd_desc *d, uint32_t id,
			  uint32_t faflags, uint32_t evflags, struct mark *m, int nr)
{
	FanotifyFileEntry ffe = FANOTIFY_FILE_ENTRY__INIT;
	FownEntry fown = FOWN_ENTRY__INIT;
	FileEntry fe = FILE_ENTRY__INIT;
	cleanup_free FanotifyMarkEntry *me = calloc(nr + 1, sizeof(*me));
	cleanup_free FanotifyMarkEntry **mp = calloc(nr + 1, sizeof(*mp));
	cleanup_free FanotifyInodeMarkEntry *ie = calloc(nr + 1, sizeof(*ie));
	cleanup_free FanotifyMountMarkEntry *mm = calloc(nr + 1, sizeof(*mm));
	cleanup_free FhEntry *fh = calloc(nr + 1, sizeof(*fh));

	if (!me || !mp || !ie || !mm || !fh)
		return -ENOMEM;
	for (int i = 0; i < nr; i++) {
		me[i] = (FanotifyMarkEntry)FANOTIFY_MARK_ENTRY__INIT;
		me[i].id = id;
		me[i].mflags = m[i].mflags;
		me[i].mask = m[i].mask;
		me[i].ignored_mask = m[i].ignored;
		me[i].s_dev = m[i].sdev;
		if (m[i].mount) {
			me[i].type = MARK_TYPE__MOUNT;
			mm[i] = (FanotifyMountMarkEntry)FANOTIFY_MOUNT_MARK_ENTRY__INIT;
			mm[i].mnt_id = m[i].mnt_id;
			mm[i].path = m[i].path;
			me[i].me = &mm[i];
		} else {
			me[i].type = MARK_TYPE__INODE;
			fh[i] = (FhEntry)FH_ENTRY__INIT;
			fh[i].bytes = m[i].fh_bytes;
			fh[i].type = m[i].fh_type;
			fh[i].n_handle = FH_WORDS;
			fh[i].handle = m[i].handle;
			fh[i].path = m[i].path;
			ie[i] = (FanotifyInodeMarkEntry)FANOTIFY_INODE_MARK_ENTRY__INIT;
			ie[i].i_ino = m[i].ino;
			ie[i].f_handle = &fh[i];
			me[i].ie = &ie[i];
		}
		mp[i] = &me[i];
		pr_debug("fanotify %u: %s mark mask %#x ignored %#x on %s\n", id,
			 m[i].mount ? "mount" : "inode", m[i].mask, m[i].ignored, m[i].path);
	}
	ffe.id = id;
	ffe.flags = d->flags;
	ffe.fown = &fown;
	ffe.faflags = faflags;
	ffe.evflags = evflags;
	ffe.n_mark = nr;
	ffe.mark = mp;
	fe.type = FD_TYPES__FANOTIFY;
	fe.id = id;
	fe.ffy = &ffe;
	return files_write_entry(fc, &fe);
}

static int fanotify_dump(struct files_dump_ctx *fc, const struct fd_desc *d, uint32_t *id)
{
	cleanup_free char *buf = NULL;
	cleanup_free struct mark *m = NULL;
	uint32_t faflags = 0, evflags = 0;
	bool head = false;
	char name[64];
	int nr = 0, ret;

	snprintf(name, sizeof(name), "fdinfo/%d", d->fd);
	buf = read_proc(d->pid, name, NULL);
	if (!buf)
		return -EIO;
	for (char *rest = buf, *p; (p = next_line(&rest));) {
		struct mark *n;

		if (sscanf(p, "fanotify flags:%x event-flags:%x", &faflags, &evflags) == 2) {
			head = true;
			continue;
		}
		if (strncmp(p, "fanotify ", 9))
			continue;
		n = xrealloc_array(m, nr + 1, sizeof(*n));
		if (!n)
			return -ENOMEM;
		m = n;
		memset(&m[nr], 0, sizeof(m[nr]));
		ret = parse_mark(d, p, &m[nr++]);
		if (ret == -EIO)
			pr_err("fd %d of pid %d: can't parse fanotify fdinfo line: %.80s\n", d->fd,
			       d->pid, p);
		if (ret)
			return ret;
	}
	if (!head) {
		pr_err("fd %d of pid %d: fanotify fdinfo without its flags\n", d->fd, d->pid);
		return -EIO;
	}
	*id = files_new_id(fc);
	return write_fanotify(fc, d, *id, faflags, evflags, m, nr);
}

/* ---- restore ---- */

static int fanotify_check(struct files_rst_ctx *fc, const FileEntry *fe)
{
	const FanotifyFileEntry *e = fe->ffy;
	int ret = files_check_sub(fe, e, e ? e->id : 0);

	if (!ret)
		ret = files_check_fown(fe, e->fown);
	for (size_t i = 0; !ret && i < e->n_mark; i++) {
		const FanotifyMarkEntry *m = e->mark[i];
		const char *path = m->type == MARK_TYPE__MOUNT ? (m->me ? m->me->path : NULL) :
				   m->type == MARK_TYPE__INODE && m->ie ? m->ie->f_handle->path : NULL;
		struct stat st;

		/* CRIU 4.2 writes 0 for the id of a mark inside its fanotify's entry */
		if ((m->id && m->id != fe->id) || !path || path[0] != '/') {
			pr_err("files.img: fanotify %u: mark %zu is malformed or has no path\n", fe->id,
			       i);
			return -EINVAL;
		}
		if (m->type == MARK_TYPE__INODE && (lstat(path, &st) || st.st_ino != m->ie->i_ino)) {
			pr_err("files.img: fanotify %u: the marked %s is gone or another inode now\n",
			       fe->id, path);
			return -ESTALE;
		}
	}
	return ret;
}

static int add_mark(int fd, uint32_t id, const FanotifyMarkEntry *m)
{
	unsigned int flags = FAN_MARK_ADD | m->mflags |
			     (m->type == MARK_TYPE__MOUNT ? FAN_MARK_MOUNT : FAN_MARK_DONT_FOLLOW);
	const char *path = m->type == MARK_TYPE__MOUNT ? m->me->path : m->ie->f_handle->path;

	if (m->mask && fanotify_mark(fd, flags, m->mask, AT_FDCWD, path)) {
		pr_perror("fanotify %u: can't mark %s with %#x", id, path, m->mask);
		return -errno;
	}
	if (m->ignored_mask &&
	    fanotify_mark(fd, flags | FAN_MARK_IGNORED_MASK, m->ignored_mask, AT_FDCWD, path)) {
		pr_perror("fanotify %u: can't mark %s with the ignored mask %#x", id, path,
			  m->ignored_mask);
		return -errno;
	}
	return 0;
}

static int fanotify_open(struct files_rst_ctx *fc, struct rfile *rf)
{
	const FanotifyFileEntry *e = rf->fe->ffy;
	unsigned int flags = e->faflags | (e->flags & O_NONBLOCK ? FAN_NONBLOCK : 0);
	int fd = fanotify_init(flags, e->evflags), ret = 0;

	if (fd < 0) {
		pr_perror("fanotify %u: fanotify_init(%#x, %#x)", e->id, flags, e->evflags);
		return -errno;
	}
	/* fdinfo lists the newest mark first: added oldest first, they list the same */
	for (size_t i = e->n_mark; !ret && i > 0; i--)
		ret = add_mark(fd, e->id, e->mark[i - 1]);
	if (ret) {
		close(fd);
		return ret;
	}
	return fd;
}

static uint32_t fanotify_flags(struct files_rst *fr, const FileEntry *fe)
{
	return fe->ffy->flags;
}

const struct files_type files_fanotify_type = {
	.type = FD_TYPES__FANOTIFY,
	.name = "fanotify",
	.match = fanotify_match,
	.dump = fanotify_dump,
	.check = fanotify_check,
	.open = fanotify_open,
	.flags = fanotify_flags,
};
