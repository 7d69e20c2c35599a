// SPDX-License-Identifier: MIT
/*
 * Dump of fd tables: walk /proc/PID/fd, find each fd's open file
 * description (deduplicated across fds and tasks), hand it to the dumper
 * of its kind and write fdinfo-<files_id>.img.
 */
#define LOG_PREFIX "files: "
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "dump/dump.h"
#include "fdinfo.pb-c.h"
#include "files/files.h"
#include "files/files_internal.h"
#include "image/image.h"
#include "base/log.h"
#include "mem/track.h"
#include "base/util.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_kcmp
#define SYS_kcmp 312
#endif
#define KCMP_FILE_TYPE 0

int files_write_entry(struct dump_ctx *dc, const FileEntry *fe)
{
	return img_write_msg(dc->files_img, &fe->base);
}

/* Opens a data image on first use. */
int files_get_img(struct dump_ctx *dc, struct img **img, enum img_type type)
{
	if (*img)
		return 0;
	*img = img_open(dc->dirfd, type, true, 0);
	return *img ? 0 : -errno;
}

int files_dump_init(struct dump_ctx *dc)
{
	dc->files = xzalloc(sizeof(*dc->files));
	if (!dc->files)
		return -ENOMEM;
	if (!dc->files_img) {
		dc->files_img = img_open(dc->dirfd, IMG_FILES, true, 0);
		if (!dc->files_img)
			return -errno;
		dc->files->own_files_img = true;
	}
	return 0;
}

int files_remember(struct dump_ctx *dc, const struct fd_desc *d, uint32_t id, FdTypes type)
{
	struct files_dump *fd = dc->files;
	struct dumped_file *n;

	n = xrealloc_array(fd->files, fd->nr_files + 1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	fd->files = n;
	n[fd->nr_files++] = (struct dumped_file){
		.id = id, .type = type, .pid = d->pid, .fd = d->fd,
		.dev = d->st.st_dev, .ino = d->st.st_ino,
		.pos = d->pos, .flags = d->flags,
	};
	return 0;
}

/* The id of an already dumped description this fd shares, or NULL. */
static struct dumped_file *find_dumped(struct files_dump *fdump, const struct fd_desc *d)
{
	for (int i = 0; i < fdump->nr_files; i++) {
		struct dumped_file *f = &fdump->files[i];
		long r;

		if (f->dev != d->st.st_dev || f->ino != d->st.st_ino)
			continue;
		r = syscall(SYS_kcmp, f->pid, d->pid, KCMP_FILE_TYPE, f->fd, d->fd);
		if (r == 0)
			return f;
		if (r > 0)
			continue;
		/* No kcmp (CONFIG_KCMP=n): same inode, position and flags. */
		if (f->pos == d->pos && f->flags == d->flags)
			return f;
	}
	return NULL;
}

static int parse_fdinfo(struct fd_desc *d)
{
	char name[64];
	cleanup_free char *buf = NULL;
	char *p;
	unsigned long long pos = 0;
	unsigned int flags = 0;
	int mnt_id = -1;

	snprintf(name, sizeof(name), "fdinfo/%d", d->fd);
	buf = read_proc(d->pid, name, NULL);
	if (!buf)
		return -errno ? -errno : -EIO;
	for (p = buf; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		if (sscanf(p, "pos: %llu", &pos) == 1 || sscanf(p, "flags: %o", &flags) == 1 ||
		    sscanf(p, "mnt_id: %d", &mnt_id) == 1)
			continue;
	}
	d->pos = pos;
	d->cloexec = flags & O_CLOEXEC;
	d->flags = flags & ~O_CLOEXEC;
	d->mnt_id = mnt_id;
	return 0;
}

static int describe_fd(pid_t pid, int pidfd, int fd, struct fd_desc *d)
{
	char path[64];
	ssize_t n;

	d->pid = pid;
	d->fd = fd;
	d->pidfd = pidfd;
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", pid, fd);
	n = readlink(path, d->link, sizeof(d->link) - 1);
	if (n < 0 || stat(path, &d->st)) {
		pr_perror("fd %d of pid %d: can't read %s", fd, pid, path);
		return -errno;
	}
	d->link[n] = '\0';
	return parse_fdinfo(d);
}

/* "anon_inode:[eventfd]" -> "eventfd", for the not-supported message. */
static const char *kind_name(const struct fd_desc *d, char *buf, size_t len)
{
	if (!strncmp(d->link, "anon_inode:", 11)) {
		const char *s = d->link + 11;

		snprintf(buf, len, "%.*s", (int)strcspn(s + (*s == '['), "]"), s + (*s == '['));
		return buf;
	}
	if (!strncmp(d->link, "/memfd:", 7))
		return "memfd";
	snprintf(buf, len, "file %s (mode %#o)", d->link, (unsigned int)d->st.st_mode);
	return buf;
}

static int unsupported(const struct fd_desc *d)
{
	char buf[PATH_MAX + 32];

	pr_err("fd %d of pid %d: %s is not supported yet\n", d->fd, d->pid,
	       kind_name(d, buf, sizeof(buf)));
	return -ENOTSUP;
}

static int dump_new_file(struct dump_ctx *dc, const struct fd_desc *d, FdTypes *type,
			 uint32_t *id)
{
	mode_t m = d->st.st_mode;
	int ret;

	if (!strncmp(d->link, "anon_inode:", 11))
		return unsupported(d);
	if (files_is_memfd(d->link) && S_ISREG(m)) {
		char proc_path[64];

		snprintf(proc_path, sizeof(proc_path), "/proc/%d/fd/%d", d->pid, d->fd);
		*type = FD_TYPES__MEMFD;
		ret = files_dump_memfd(dc, d->link, proc_path, &d->st, d->flags, d->pos, id);
	} else if (S_ISSOCK(m)) {
		*type = FD_TYPES__UNIXSK;
		ret = files_dump_socket(dc, d, id);
	} else if (S_ISFIFO(m) && !strncmp(d->link, "pipe:", 5)) {
		*type = FD_TYPES__PIPE;
		ret = files_dump_pipe(dc, d, id);
	} else if (S_ISFIFO(m)) {
		*type = FD_TYPES__FIFO;
		ret = files_dump_fifo(dc, d, id);
	} else if (S_ISCHR(m) && files_is_tty(d->st.st_rdev)) {
		*type = FD_TYPES__TTY;
		ret = files_dump_tty(dc, d, id);
	} else if (S_ISREG(m) || S_ISDIR(m) || S_ISCHR(m) || S_ISBLK(m) || S_ISLNK(m)) {
		*type = FD_TYPES__REG;
		ret = files_dump_reg(dc, d, id);
	} else {
		return unsupported(d);
	}
	if (ret)
		return ret;
	return files_remember(dc, d, *id, *type);
}

static int dump_one_fd(struct dump_ctx *dc, struct img *img, pid_t pid, int pidfd, int fd)
{
	struct fd_desc *d = xzalloc(sizeof(*d));
	FdinfoEntry fe = FDINFO_ENTRY__INIT;
	struct dumped_file *old;
	FdTypes type = FD_TYPES__UND;
	uint32_t id = 0;
	int ret;

	if (!d)
		return -ENOMEM;
	ret = describe_fd(pid, pidfd, fd, d);
	if (ret)
		goto out;
	if (!strcmp(d->link, "anon_inode:[userfaultfd]")) {
		/* amber's own memory tracker lives in the target: never saved. */
		pr_debug("fd %d of pid %d: userfaultfd skipped\n", fd, pid);
		goto out;
	}
	old = find_dumped(dc->files, d);
	if (old) {
		id = old->id;
		type = old->type;
	} else {
		ret = dump_new_file(dc, d, &type, &id);
		if (ret)
			goto out;
	}
	fe.id = id;
	fe.type = type;
	fe.fd = fd;
	fe.flags = d->cloexec ? FD_CLOEXEC : 0;
	pr_debug("pid %d fd %d: type %d id %u (%s)\n", pid, fd, type, id, d->link);
	ret = img_write_msg(img, &fe.base);
out:
	free(d);
	return ret;
}

static int cmp_int(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

/* The fd numbers of @pid, sorted. Returns the count or -errno. */
static int list_fds(pid_t pid, int **out)
{
	char path[64];
	DIR *dir;
	struct dirent *de;
	int *fds = NULL, nr = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	dir = opendir(path);
	if (!dir) {
		pr_perror("can't open %s", path);
		return -errno;
	}
	while ((de = readdir(dir))) {
		int *n;

		if (de->d_name[0] == '.')
			continue;
		n = xrealloc_array(fds, nr + 1, sizeof(*fds));
		if (!n) {
			free(fds);
			closedir(dir);
			return -ENOMEM;
		}
		fds = n;
		fds[nr++] = atoi(de->d_name);
	}
	closedir(dir);
	if (nr)
		qsort(fds, nr, sizeof(*fds), cmp_int);
	*out = fds;
	return nr;
}

int files_dump_task(struct dump_ctx *dc, struct dump_task *t)
{
	cleanup_free int *fds = NULL;
	cleanup_close int pidfd = -1;
	struct img *img;
	int nr, ret = 0;

	if (t->zombie)
		return 0;
	if (!t->files_id)
		t->files_id = dump_new_id(dc);
	pidfd = syscall(SYS_pidfd_open, t->pid, 0);
	if (pidfd < 0) {
		pr_perror("pidfd_open(%d)", t->pid);
		return -errno;
	}
	nr = list_fds(t->pid, &fds);
	if (nr < 0)
		return nr;
	img = img_open(dc->dirfd, IMG_FDINFO, true, t->files_id);
	if (!img)
		return -errno;
	for (int i = 0; i < nr && !ret; i++) {
		/* amber's own memory tracker is not the task's: never saved. */
		if (track_is_tracker_fd(t->pid, fds[i])) {
			pr_info("pid %d fd %d: amber's memory tracker, not saved\n", t->pid, fds[i]);
			continue;
		}
		ret = dump_one_fd(dc, img, t->pid, pidfd, fds[i]);
	}
	if (ret) {
		img_close(img);
		return ret;
	}
	pr_info("pid %d: %d fds in fdinfo-%u.img\n", t->pid, nr, t->files_id);
	return img_close(img);
}

int files_dump_path(struct dump_ctx *dc, pid_t pid, const char *map_files_name, uint32_t *id)
{
	struct files_dump *fd = dc->files;
	char proc_path[PATH_MAX], link[PATH_MAX];
	struct stat st;
	ssize_t n;

	snprintf(proc_path, sizeof(proc_path), "/proc/%d/%s", pid, map_files_name);
	n = readlink(proc_path, link, sizeof(link) - 1);
	if (n < 0 || stat(proc_path, &st)) {
		pr_perror("pid %d: can't read %s", pid, proc_path);
		return -errno;
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
	int ret = files_dump_reg_path(dc, link, proc_path, &st, O_RDONLY, 0, -1, &np->id);

	if (ret) {
		free(np->path);
		return ret;
	}
	fd->nr_paths++;
	*id = np->id;
	return 0;
}

int files_dump_fini(struct dump_ctx *dc)
{
	struct files_dump *fd = dc->files;
	int ret = 0, r;

	if (!fd)
		return 0;
	ret = files_check_usk_peers(dc);
	struct img **imgs[] = { &fd->pipes_data, &fd->fifo_data, &fd->sk_queues, &fd->tty_info,
				&fd->memfd_inodes };

	for (size_t i = 0; i < ARRAY_SIZE(imgs); i++) {
		r = img_close(*imgs[i]);
		*imgs[i] = NULL;
		if (r && !ret)
			ret = r;
	}
	if (fd->own_files_img) {
		r = img_close(dc->files_img);
		dc->files_img = NULL;
		fd->own_files_img = false;
		if (r && !ret)
			ret = r;
	}
	return ret;
}

void files_dump_free(struct dump_ctx *dc)
{
	struct files_dump *fd = dc->files;

	if (!fd)
		return;
	img_close(fd->pipes_data);
	img_close(fd->fifo_data);
	img_close(fd->sk_queues);
	img_close(fd->tty_info);
	img_close(fd->memfd_inodes);
	free(fd->memfds);
	if (fd->own_files_img) {
		img_close(dc->files_img);
		dc->files_img = NULL;
	}
	for (int i = 0; i < fd->nr_paths; i++)
		free(fd->paths[i].path);
	free(fd->paths);
	free(fd->files);
	free(fd->usks);
	free(fd->pipes_done);
	free(fd->fifos_done);
	free(fd->ttys);
	free(fd);
	dc->files = NULL;
}
