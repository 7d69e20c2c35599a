// SPDX-License-Identifier: MIT
/*
 * Regular files (and directories, devices other than terminals, and O_PATH
 * fds on any kind of file, symlinks included), by path,
 * with unlinked ("ghost") files' contents saved in ghost-file-<id>.img and
 * recreated, then unlinked again, before the tree is forked.
 */
#define LOG_PREFIX "reg: "
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "fdinfo.pb-c.h"
#include "files/files_internal.h"
#include "ghost-file.pb-c.h"
#include "image/image.h"
#include "regfile.pb-c.h"
#include "remap-file-path.pb-c.h"

#define DELETED_SUFFIX " (deleted)"
#define COPY_CHUNK     (1u << 20)

/* ---- dump ---- */

static void fill_ghost(GhostFileEntry *ge, Timeval *atim, Timeval *mtim, const struct stat *st)
{
	ge->uid = st->st_uid;
	ge->gid = st->st_gid;
	ge->mode = st->st_mode;
	ge->has_dev = ge->has_ino = ge->has_size = true;
	ge->dev = st->st_dev;
	ge->ino = st->st_ino;
	ge->size = st->st_size;
	atim->tv_sec = st->st_atim.tv_sec;
	atim->tv_usec = st->st_atim.tv_nsec / 1000;
	mtim->tv_sec = st->st_mtim.tv_sec;
	mtim->tv_usec = st->st_mtim.tv_nsec / 1000;
	ge->atim = atim;
	ge->mtim = mtim;
}

/*
 * remap-fpath.img names the ghost of file @id, as CRIU's does: CRIU
 * finds ghost files only through it. amber's ghost ids are the files'.
 */
static int write_ghost_remap(struct files_dump_ctx *fc, uint32_t id)
{
	RemapFilePathEntry re = REMAP_FILE_PATH_ENTRY__INIT;

	if (!fc->st->remap_fpath) {
		fc->st->remap_fpath = img_open(fc->dirfd, IMG_REMAP_FPATH, true, 0);
		if (!fc->st->remap_fpath)
			return -errno;
	}
	re.orig_id = re.remap_id = id;
	re.has_remap_type = true;
	re.remap_type = REMAP_TYPE__GHOST;
	return img_write_msg(fc->st->remap_fpath, &re.base);
}

static int dump_ghost(struct files_dump_ctx *fc, uint32_t id, const char *proc_path,
		      const struct stat *st)
{
	GhostFileEntry ge = GHOST_FILE_ENTRY__INIT;
	Timeval atim = TIMEVAL__INIT, mtim = TIMEVAL__INIT;
	cleanup_close int fd = -1;
	cleanup_free char *buf = NULL;
	struct img *img;
	off_t left = st->st_size;
	int ret;

	fd = open(proc_path, O_RDONLY | O_CLOEXEC);
	buf = malloc(COPY_CHUNK);
	if (fd < 0 && errno == EACCES) {
		/* An unprivileged dump of a file it inherited from root, say. */
		pr_err("can't read unlinked file %s: it is uid %u's, mode %o, and the caller is "
		       "uid %u\n", proc_path, (unsigned)st->st_uid, (unsigned)(st->st_mode & 07777),
		       (unsigned)geteuid());
		return -EACCES;
	}
	if (fd < 0 || !buf) {
		pr_perror("can't read unlinked file %s", proc_path);
		return fd < 0 ? -errno : -ENOMEM;
	}
	fill_ghost(&ge, &atim, &mtim, st);
	img = img_open(fc->dirfd, IMG_GHOST_FILE, true, id);
	if (!img)
		return -errno;
	ret = img_write_msg(img, &ge.base);
	for (off_t off = 0; !ret && left > 0;) {
		size_t n = min((off_t)COPY_CHUNK, left);

		ret = pread_full(fd, buf, n, off);
		if (ret)
			pr_err("unlinked file %s changed size while dumped\n", proc_path);
		else
			ret = img_write_raw(img, buf, n);
		off += n;
		left -= n;
	}
	if (ret) {
		img_close(img);
		return ret;
	}
	pr_info("unlinked file %s: %lld bytes saved as ghost file %#x\n", proc_path,
		(long long)st->st_size, id);
	ret = img_close(img);
	return ret ? ret : write_ghost_remap(fc, id);
}

/*
 * The name @name (as amber sees it) of the file behind @proc_path was
 * unlinked, but its inode is still linked under another name: glibc's
 * sem_open() links a temporary file into /dev/shm under the semaphore's
 * name and unlinks the temporary, which the mapping goes on showing.
 * Reopening by the old name would fail or open another file, so the
 * other name is looked for in the same directory (through the task's
 * root); @name becomes it. Elsewhere it is not searched for: -ENOENT.
 */
static int find_other_name(const char *proc_path, char *name, size_t len, const struct stat *st)
{
	const char *slash = strrchr(name, '/'), *pid_end;
	char dir[PATH_MAX + 64];
	struct dirent *de;
	int ret = -ENOENT;
	DIR *d;

	/* "/proc/PID/..." -> "/proc/PID/root" + the directory */
	pid_end = strncmp(proc_path, "/proc/", 6) ? NULL : strchr(proc_path + 6, '/');
	if (!slash || !pid_end)
		return -ENOENT;
	snprintf(dir, sizeof(dir), "%.*s/root%.*s", (int)(pid_end - proc_path), proc_path,
		 (int)(slash - name), name);
	d = opendir(dir[0] ? dir : "/");
	if (!d)
		return -ENOENT;
	while ((de = readdir(d))) {
		struct stat other;

		if (de->d_ino != st->st_ino || !strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (fstatat(dirfd(d), de->d_name, &other, AT_SYMLINK_NOFOLLOW) ||
		    other.st_dev != st->st_dev || other.st_ino != st->st_ino)
			continue;
		if ((size_t)snprintf(name + (slash - name) + 1, len - (slash - name) - 1, "%s",
				     de->d_name) < len - (slash - name) - 1)
			ret = 0;
		break;
	}
	closedir(d);
	return ret;
}

int files_dump_reg_path(struct files_dump_ctx *fc, const char *path, const char *proc_path,
			const struct stat *st, uint32_t flags, uint64_t pos, int mnt_id,
			uint32_t *id)
{
	RegFileEntry re = REG_FILE_ENTRY__INIT;
	FownEntry fown = FOWN_ENTRY__INIT;
	FileEntry fe = FILE_ENTRY__INIT;
	char name[PATH_MAX], linked_as[PATH_MAX] = "";
	bool ghost = S_ISREG(st->st_mode) && st->st_nlink == 0;
	size_t len = strlen(path);
	int ret;

	if (files_is_memfd(path) && S_ISREG(st->st_mode)) /* the file of a memfd mapping */
		return files_dump_memfd(fc, path, proc_path, st, flags, pos, id);
	if (path[0] != '/') {
		pr_err("%s: file %s is outside amber's view of the file system\n", proc_path, path);
		return -ENOTSUP;
	}
	if (!ghost && st->st_nlink == 0 && !S_ISCHR(st->st_mode)) {
		pr_err("%s: unlinked %s is not a regular file: not supported yet\n", proc_path, path);
		return -ENOTSUP;
	}
	snprintf(name, sizeof(name), "%s", path);
	if (len > strlen(DELETED_SUFFIX) && (ghost || st->st_nlink) &&
	    !strcmp(path + len - strlen(DELETED_SUFFIX), DELETED_SUFFIX)) {
		name[len - strlen(DELETED_SUFFIX)] = '\0';
		/* unlinked here, linked elsewhere (a name really ending so is found too) */
		if (!ghost) {
			snprintf(linked_as, sizeof(linked_as), "%s", name);
			if (find_other_name(proc_path, linked_as, sizeof(linked_as), st)) {
				pr_err("%s: %s was unlinked, but its inode is still linked under "
				       "a name amber can't find (it looks in the same directory "
				       "only)\n", proc_path, path);
				return -ENOTSUP;
			}
			if (!strcmp(linked_as, path)) { /* named so, not unlinked */
				snprintf(name, sizeof(name), "%s", path);
				linked_as[0] = 0;
			} else {
				pr_info("%s: %s is linked as %s\n", proc_path, path, linked_as);
			}
		}
	}

	*id = files_new_id(fc);
	re.id = *id;
	re.flags = flags;
	re.pos = pos;
	re.fown = &fown;
	re.name = name;
	/*
	 * A ghost's mount is left out: CRIU's restore links a ghost to its
	 * name through the mount of mnt_id, which it knows only from
	 * mountpoints images, and amber's restore reads none of it.
	 */
	re.has_mnt_id = mnt_id >= 0 && !ghost;
	re.mnt_id = mnt_id;
	re.has_size = re.has_mode = true;
	re.size = st->st_size;
	re.mode = st->st_mode;
	fe.type = FD_TYPES__REG;
	fe.id = *id;
	fe.reg = &re;
	re.amber_linked_as = linked_as[0] ? linked_as : NULL;
	if (ghost) {
		ret = dump_ghost(fc, *id, proc_path, st);
		if (ret)
			return ret;
	}
	return files_write_entry(fc, &fe);
}

/*
 * A file by path (cwd, root, the exe, a mapped file), not by fd: saved once
 * per path and inode, whatever fds share its description.
 */
int files_dump_path(struct files_dump_ctx *fc, pid_t pid, const char *map_files_name, uint32_t *id)
{
	struct files_dump *fd = fc->st;
	char proc_path[PATH_MAX], link[PATH_MAX];
	struct stat st;
	ssize_t n;

	snprintf(proc_path, sizeof(proc_path), "/proc/%d/%s", pid, map_files_name);
	n = readlink(proc_path, link, sizeof(link) - 1);
	if (n < 0 || stat(proc_path, &st)) {
		int err = errno;

		pr_err("pid %d: can't read %s: %s%s\n", pid, proc_path, strerror(err),
		       err == EPERM ? " (map_files needs CAP_CHECKPOINT_RESTORE or CAP_SYS_ADMIN)" : "");
		return -err;
	}
	link[n] = '\0';
	for (int i = 0; i < fd->nr_paths; i++) {
		struct dumped_path *p = &fd->paths[i];

		if (p->dev == st.st_dev && p->ino == st.st_ino && !strcmp(p->path, link)) {
			*id = p->id;
			return 0;
		}
	}
	struct dumped_path *np = xrealloc_array(fd->paths, fd->nr_paths + 1, sizeof(*np));

	if (!np)
		return -ENOMEM;
	fd->paths = np;
	np = &np[fd->nr_paths];
	*np = (struct dumped_path){ .dev = st.st_dev, .ino = st.st_ino, .path = strdup(link) };
	if (!np->path)
		return -ENOMEM;
	int ret = files_dump_reg_path(fc, link, proc_path, &st, O_RDONLY, 0, -1, &np->id);

	if (ret) {
		free(np->path);
		return ret;
	}
	fd->nr_paths++;
	*id = np->id;
	return 0;
}

static int reg_dump_fini(struct files_dump_ctx *fc)
{
	int ret = img_close(fc->st->remap_fpath);

	fc->st->remap_fpath = NULL;
	return ret;
}

static void reg_dump_free(struct files_dump_ctx *fc)
{
	for (int i = 0; i < fc->st->nr_paths; i++)
		free(fc->st->paths[i].path);
	free(fc->st->paths);
	img_close(fc->st->remap_fpath);
	fc->st->remap_fpath = NULL;
}

static bool reg_match(const struct fd_desc *d)
{
	mode_t m = d->st.st_mode;

	if (!strncmp(d->link, "anon_inode:", 11))
		return false;
	/* O_PATH: a path to reopen, any kind of file; O_PATH | O_NOFOLLOW: a symlink itself */
	return S_ISREG(m) || S_ISDIR(m) || S_ISCHR(m) || S_ISBLK(m) || S_ISLNK(m) ||
	       d->flags & O_PATH;
}

static int reg_dump(struct files_dump_ctx *fc, const struct fd_desc *d, uint32_t *id)
{
	char proc_path[64];

	snprintf(proc_path, sizeof(proc_path), "/proc/%d/fd/%d", d->pid, d->fd);
	return files_dump_reg_path(fc, d->link, proc_path, &d->st, d->flags, d->pos, d->mnt_id,
				   id);
}

/* ---- restore: load ---- */

static int reg_check(struct files_rst_ctx *fc, const FileEntry *fe)
{
	bool ok = fe->reg && fe->reg->name && fe->reg->name[0] == '/' &&
		  (!fe->reg->amber_linked_as || fe->reg->amber_linked_as[0] == '/');

	return files_check_sub(fe, ok, ok ? fe->reg->id : 0);
}

/*
 * A chunked ghost (CRIU's for files of 12 KiB and more): (ghost_chunk_entry,
 * len raw bytes) pairs to the end, in order, inside the file's size.
 */
static int check_ghost_chunks(struct img *img, const GhostFileEntry *g, off_t img_size)
{
	uint64_t end = 0;
	int ret;

	for (;;) {
		ProtobufCMessage *m = NULL;
		GhostChunkEntry *c;
		off_t at;

		ret = img_read_msg(img, &ghost_chunk_entry__descriptor, &m);
		if (ret <= 0)
			return ret;
		c = (GhostChunkEntry *)m;
		at = img_tell(img);
		if (c->off < end || c->len > g->size || c->off > g->size - c->len || at < 0 ||
		    c->len > (uint64_t)(img_size - at)) {
			pr_err("%s: chunk of %llu bytes at %llu out of order, past the file's %llu "
			       "bytes or past the image's end\n", img->name,
			       (unsigned long long)c->len, (unsigned long long)c->off,
			       (unsigned long long)g->size);
			ret = -EINVAL;
		} else {
			end = c->off + c->len;
			ret = img_skip(img, c->len);
		}
		protobuf_c_message_free_unpacked(m, NULL);
		if (ret)
			return ret;
	}
}

/* ghost-file-@ghost_id.img holds file @rf's contents: read and checked now. */
static int load_ghost(struct files_rst_ctx *fc, struct rfile *rf, uint32_t ghost_id,
		      bool required)
{
	struct img *img = required ? img_open(fc->dirfd, IMG_GHOST_FILE, false, ghost_id)
				   : img_open_optional(fc->dirfd, IMG_GHOST_FILE, ghost_id);
	ProtobufCMessage *m = NULL;
	struct stat st;
	off_t at;
	int ret;

	if (!img)
		return errno == ENOENT && !required ? 0 : -errno;
	ret = img_read_msg(img, &ghost_file_entry__descriptor, &m);
	if (ret == 1) {
		rf->ghost = (GhostFileEntry *)m;
		rf->ghost_id = ghost_id;
		at = img_tell(img);
		ret = fstat(img->fd, &st) || at < 0 ? -errno : 0;
		if (!ret && (!S_ISREG(rf->ghost->mode) || (rf->ghost->chunks && !rf->ghost->has_size))) {
			pr_err("%s: not a plain file, or chunks without a size\n", img->name);
			ret = -EINVAL;
		} else if (!ret && rf->ghost->chunks) {
			ret = check_ghost_chunks(img, rf->ghost, st.st_size);
		} else if (!ret && rf->ghost->has_size &&
			   (uint64_t)(st.st_size - at) != rf->ghost->size) {
			pr_err("%s: holds %lld bytes for a file of %llu\n", img->name,
			       (long long)(st.st_size - at), (unsigned long long)rf->ghost->size);
			ret = -EINVAL;
		}
	} else if (ret == 0) {
		pr_err("%s is empty\n", img->name);
		ret = -EINVAL;
	}
	img_close(img);
	return ret;
}

/*
 * remap-fpath.img (CRIU's, and amber's since it writes one) names the
 * ghost of each unlinked file; several files may share one (CRIU's, for
 * one inode). Without it (amber's older images) a file's ghost has the
 * file's id.
 */
static int load_remaps(struct files_rst_ctx *fc, struct img *img)
{
	struct files_rst *fr = fc->st;
	int ret;

	for (;;) {
		ProtobufCMessage *m = NULL;
		RemapFilePathEntry *re;
		struct rfile *rf;

		ret = img_read_msg(img, &remap_file_path_entry__descriptor, &m);
		if (ret <= 0)
			return ret;
		re = (RemapFilePathEntry *)m;
		rf = files_rfile(fr, re->orig_id);
		if (re->has_remap_type && re->remap_type != REMAP_TYPE__GHOST) {
			pr_err("remap-fpath.img: file %#x is reopened through a %s, which amber "
			       "does not restore\n", re->orig_id,
			       re->remap_type == REMAP_TYPE__LINKED ?
				       "link (CRIU's --link-remap)" : "dead task's /proc");
			ret = -ENOTSUP;
		} else if (!rf || rf->fe->type != FD_TYPES__REG || rf->ghost) {
			pr_err("remap-fpath.img: file %#x is no regular file, or remapped twice\n",
			       re->orig_id);
			ret = -EINVAL;
		} else {
			/* CRIU before 2.x set bit 31 of the id for a ghost, with no type */
			ret = load_ghost(fc, rf, re->has_remap_type ? re->remap_id
								    : re->remap_id & ~(1u << 31), true);
		}
		protobuf_c_message_free_unpacked(m, NULL);
		if (ret)
			return ret;
	}
}

static int reg_load(struct files_rst_ctx *fc)
{
	struct files_rst *fr = fc->st;
	struct img *remaps = img_open_optional(fc->dirfd, IMG_REMAP_FPATH, 0);
	int ret = 0;

	if (remaps) {
		ret = load_remaps(fc, remaps);
		img_close(remaps);
		return ret;
	}
	if (errno != ENOENT)
		return -errno;
	for (int i = 0; !ret && i < fr->nr_files; i++)
		if (fr->files[i].fe->type == FD_TYPES__REG)
			ret = load_ghost(fc, &fr->files[i], fr->files[i].fe->id, false);
	return ret;
}

/* ---- restore: ghosts, before fork ---- */

/* Creates the file at its old path if free, else next to it, else in the image dir. */
static int create_ghost(struct files_rst_ctx *fc, struct rfile *rf, char *made, size_t len,
			bool *in_imgdir)
{
	const char *name = rf->fe->reg->name;
	const char *slash = strrchr(name, '/');
	int fl = O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, fd;

	*in_imgdir = false;
	snprintf(made, len, "%s", name);
	fd = open(made, fl, 0600);
	if (fd >= 0)
		return fd;
	snprintf(made, len, "%.*s/.amber-ghost-%x-%d", (int)(slash - name), name, rf->fe->id,
		 getpid());
	fd = open(made, fl, 0600);
	if (fd >= 0)
		return fd;
	snprintf(made, len, ".amber-ghost-%x-%d", rf->fe->id, getpid());
	*in_imgdir = true;
	fd = openat(fc->dirfd, made, fl, 0600);
	if (fd < 0)
		pr_perror("can't recreate unlinked file %s", name);
	return fd < 0 ? -errno : fd;
}

static int copy_ghost_range(struct img *img, int fd, char *buf, uint64_t off, uint64_t len)
{
	int ret = 0;

	while (!ret && len) {
		size_t n = min((uint64_t)COPY_CHUNK, len);

		ret = img_read_raw(img, buf, n);
		if (!ret && pwrite(fd, buf, n, off) != (ssize_t)n)
			ret = errno ? -errno : -EIO;
		off += n;
		len -= n;
	}
	return ret;
}

/* The contents, whole or in chunks (load_ghost checked them), into @fd. */
static int copy_ghost(struct files_rst_ctx *fc, struct rfile *rf, int fd)
{
	struct img *img = img_open(fc->dirfd, IMG_GHOST_FILE, false, rf->ghost_id);
	cleanup_free char *buf = malloc(COPY_CHUNK);
	ProtobufCMessage *m = NULL;
	int ret;

	if (!img || !buf) {
		img_close(img);
		return -ENOMEM;
	}
	ret = img_read_msg(img, &ghost_file_entry__descriptor, &m);
	if (m)
		protobuf_c_message_free_unpacked(m, NULL);
	ret = ret == 1 ? 0 : -EIO;
	if (!ret && !rf->ghost->chunks) {
		off_t at = img_tell(img);
		struct stat st;

		/* amber's carry a size; CRIU's small ones run to the image's end */
		if (rf->ghost->has_size)
			ret = copy_ghost_range(img, fd, buf, 0, rf->ghost->size);
		else if (at < 0 || fstat(img->fd, &st))
			ret = -errno;
		else
			ret = copy_ghost_range(img, fd, buf, 0, st.st_size - at);
	} else if (!ret) {
		ret = ftruncate(fd, rf->ghost->size) ? -errno : 0;
		while (!ret) {
			GhostChunkEntry *c;

			m = NULL;
			ret = img_read_msg(img, &ghost_chunk_entry__descriptor, &m);
			if (ret <= 0)
				break;
			c = (GhostChunkEntry *)m;
			ret = copy_ghost_range(img, fd, buf, c->off, c->len);
			protobuf_c_message_free_unpacked(m, NULL);
		}
	}
	img_close(img);
	return ret;
}

static int prepare_ghost(struct files_rst_ctx *fc, struct rfile *rf)
{
	GhostFileEntry *g = rf->ghost;
	char made[PATH_MAX];
	bool in_imgdir;
	int fd = create_ghost(fc, rf, made, sizeof(made), &in_imgdir), ret;

	if (fd < 0)
		return fd;
	ret = copy_ghost(fc, rf, fd);
	if (!ret && fchmod(fd, g->mode & 07777))
		ret = -errno;
	if (!ret && fchown(fd, g->uid, g->gid))
		pr_warn("unlinked file %s: can't chown to %u:%u\n", rf->fe->reg->name, g->uid, g->gid);
	if (!ret && g->mtim) {
		struct timespec ts[2] = {
			{ g->atim ? g->atim->tv_sec : 0, g->atim ? g->atim->tv_usec * 1000 : UTIME_OMIT },
			{ g->mtim->tv_sec, g->mtim->tv_usec * 1000 },
		};

		futimens(fd, ts);
	}
	if (in_imgdir ? unlinkat(fc->dirfd, made, 0) : unlink(made))
		pr_warn("can't unlink %s: %s\n", made, strerror(errno));
	if (ret) {
		pr_err("can't recreate unlinked file %s: %s\n", rf->fe->reg->name, strerror(-ret));
		close(fd);
		return ret;
	}
	rf->ghost_fd = files_move_high(fd, fc->svc_fd_base);
	return rf->ghost_fd < 0 ? rf->ghost_fd : 0;
}

/*
 * A file whose name was unlinked while another name of its inode stayed
 * (amber_linked_as): the old name is linked to the inode again for one
 * open and unlinked, so that the tasks' fds and mappings show it as
 * they did ("NAME (deleted)"); if the old name is taken, a temporary
 * name next to it serves instead. Held, as a ghost, by rf->ghost_fd.
 */
static int prepare_linked(struct files_rst_ctx *fc, struct rfile *rf)
{
	const char *name = rf->fe->reg->name, *other = rf->fe->reg->amber_linked_as;
	const char *slash = strrchr(name, '/');
	char made[PATH_MAX];
	int fd, ret;

	snprintf(made, sizeof(made), "%s", name);
	ret = link(other, made) ? -errno : 0;
	if (ret == -EEXIST) {
		snprintf(made, sizeof(made), "%.*s/.amber-linked-%x-%d", (int)(slash - name), name,
			 rf->fe->id, getpid());
		ret = link(other, made) ? -errno : 0;
	}
	if (ret) {
		pr_err("can't link %s (unlinked at the dump) to its inode's other name %s: %s\n",
		       name, other, strerror(-ret));
		return ret;
	}
	fd = open(made, O_PATH | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		pr_perror("can't open %s", made);
	if (unlink(made))
		pr_warn("can't unlink %s: %s\n", made, strerror(errno));
	if (fd < 0)
		return -EIO;
	pr_info("%s: reopened through its other name %s\n", name, other);
	rf->ghost_fd = files_move_high(fd, fc->svc_fd_base);
	return rf->ghost_fd < 0 ? rf->ghost_fd : 0;
}

/*
 * One ghost for several files (CRIU's, one inode opened under several
 * names): made once, by the first; the others get a dup. 1 when done.
 */
static int share_ghost(struct files_rst_ctx *fc, struct rfile *rf, int idx)
{
	struct files_rst *fr = fc->st;

	for (int i = 0; i < idx; i++) {
		struct rfile *first = &fr->files[i];
		int fd;

		if (!first->ghost || first->ghost_id != rf->ghost_id || first->ghost_fd < 0)
			continue;
		fd = dup(first->ghost_fd);
		if (fd < 0)
			return -errno;
		rf->ghost_fd = files_move_high(fd, fc->svc_fd_base);
		return rf->ghost_fd < 0 ? rf->ghost_fd : 1;
	}
	return 0;
}

static int reg_prepare(struct files_rst_ctx *fc)
{
	struct files_rst *fr = fc->st;
	int ret = 0;

	for (int i = 0; !ret && i < fr->nr_files; i++) {
		struct rfile *rf = &fr->files[i];

		if (rf->ghost) {
			ret = share_ghost(fc, rf, i);
			ret = ret > 0 ? 0 : ret ? ret : prepare_ghost(fc, rf);
		} else if (rf->fe->type == FD_TYPES__REG && rf->fe->reg->amber_linked_as)
			ret = prepare_linked(fc, rf);
	}
	return ret;
}

/* ---- restore: open ---- */

static int reg_open(struct files_rst_ctx *fc, struct rfile *rf)
{
	RegFileEntry *re = rf->fe->reg;
	char path[64];
	const char *p = re->name;
	int fd;

	if (rf->ghost_fd >= 0) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", rf->ghost_fd);
		p = path;
	}
	/* A ghost is reopened through its /proc/self/fd link: O_NOFOLLOW would refuse it. */
	fd = open(p, files_open_flags(re->flags) & ~(rf->ghost_fd >= 0 ? O_NOFOLLOW : 0));
	if (fd < 0) {
		pr_perror("can't open %s (file %u)", re->name, re->id);
		return -errno;
	}
	if (re->pos && lseek(fd, re->pos, SEEK_SET) < 0 && S_ISREG(re->mode)) {
		pr_perror("can't seek %s to %llu", re->name, (unsigned long long)re->pos);
		close(fd);
		return -errno;
	}
	return fd;
}

int files_open_reg(struct files_rst_ctx *fc, uint32_t id, int flags)
{
	struct rfile *rf = fc->st ? files_rfile(fc->st, id) : NULL;
	char path[64];
	const char *p;
	int fd;

	if (rf && rf->fe->type == FD_TYPES__MEMFD) /* the file of a memfd mapping */
		return files_open_memfd(fc, rf, flags, 0);
	if (!rf || rf->fe->type != FD_TYPES__REG) {
		pr_err("no regular file %u in files.img\n", id);
		return -ENOENT;
	}
	p = rf->fe->reg->name;
	if (rf->ghost_fd >= 0) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", rf->ghost_fd);
		p = path;
	}
	fd = open(p, files_open_flags(flags));
	if (fd < 0)
		pr_perror("can't open %s (file %u)", rf->fe->reg->name, id);
	return fd < 0 ? -errno : fd;
}

static uint32_t reg_flags(struct files_rst *fr, const FileEntry *fe)
{
	return fe->reg->flags;
}

const struct files_type files_reg_type = {
	.type = FD_TYPES__REG,
	.name = "regular file",
	.match = reg_match,
	.dump = reg_dump,
	.dump_fini = reg_dump_fini,
	.dump_free = reg_dump_free,
	.check = reg_check,
	.load = reg_load,
	.prepare = reg_prepare,
	.open = reg_open,
	.flags = reg_flags,
};
