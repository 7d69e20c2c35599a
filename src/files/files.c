// SPDX-License-Identifier: MIT
/*
 * The dispatcher of fds; it knows no file type (those are in table.c).
 *
 * Dump: walk /proc/PID/fd, find each fd's open file description
 * (deduplicated across fds and tasks by kcmp), hand a new one to the
 * first type whose match() takes it and write fdinfo-<files_id>.img.
 *
 * Restore: read files.img (each entry checked by its type) and every
 * task's fdinfo image, let each type load its data images; before fork,
 * let each type prepare its shared objects and open once the files that
 * several tasks share; after fork, put a task's fds in place.
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
#include <sys/socket.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "fdinfo.pb-c.h"
#include "files/files.h"
#include "files/desc_index.h"
#include "files/files_internal.h"
#include "image/image.h"
#include "mem/track.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_kcmp
#define SYS_kcmp 312
#endif
#define KCMP_FILE_TYPE 0

/* ---- dump ---- */

static int dump_own_fd(struct files_dump_ctx *fc, int fd, uint32_t *id);

int files_dump_init(struct files_dump_ctx *fc)
{
	fc->st = xzalloc(sizeof(*fc->st));
	if (!fc->st)
		return -ENOMEM;
	fc->st->dump_own_fd = dump_own_fd;
	fc->st->files_img = img_open(fc->dirfd, IMG_FILES, true, 0);
	return fc->st->files_img ? 0 : -errno;
}

static int remember(struct files_dump *fd, const struct fd_desc *d, uint32_t id, FdTypes type)
{
	if (array_make_room(fd->files, fd->nr_files, fd->cap_files, 64))
		return -ENOMEM;
	fd->files[fd->nr_files] = (struct dumped_file){
		.id = id, .type = type, .pid = d->pid, .fd = d->fd,
		.dev = d->st.st_dev, .ino = d->st.st_ino,
		.pos = d->pos, .flags = d->flags,
	};
	return desc_index_add(&fd->index, fd->files, fd->nr_files++);
}

/* The id of an already dumped description this fd shares, or NULL. */
static struct dumped_file *find_dumped(struct files_dump *fdump, const struct fd_desc *d)
{
	int i = desc_index_find(&fdump->index, fdump->files, d);

	return i < 0 ? NULL : &fdump->files[i];
}

/*
 * fdinfo is one seq_file record: a read shorter than the buffer holds all
 * of it, which saves the read of EOF (and a malloc) for almost every fd;
 * a full buffer (an epoll or inotify fd with many entries) is read again
 * whole.
 */
/* /proc/PID/fd and /proc/PID/fdinfo of the task dumped, open once for all its fds. */
struct proc_fd_dirs {
	int fd, info;
};

static int open_fd_dirs(pid_t pid, struct proc_fd_dirs *dirs)
{
	char path[64];
	int err;

	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	dirs->fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirs->fd < 0)
		goto fail;
	snprintf(path, sizeof(path), "/proc/%d/fdinfo", pid);
	dirs->info = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirs->info >= 0)
		return 0;
	err = errno;
	close(dirs->fd);
	errno = err;
fail:
	err = errno;
	pr_err("can't open %s: %s\n", path, strerror(err));
	return -err;
}

static void close_fd_dirs(struct proc_fd_dirs *dirs)
{
	close(dirs->fd);
	close(dirs->info);
}

/*
 * fdinfo is one seq_file record: a read shorter than the buffer holds all
 * of it, which saves the read of EOF (and a malloc) for almost every fd;
 * a full buffer (an epoll or inotify fd with many entries) is read again
 * whole.
 */
static int parse_fdinfo(struct fd_desc *d, int info_dir, const char *fdname)
{
	char name[64], small[4096];
	cleanup_free char *big = NULL;
	char *buf = small, *p;
	unsigned long long pos = 0;
	unsigned int flags = 0;
	int mnt_id = -1, fd;
	ssize_t n;

	fd = openat(info_dir, fdname, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	do
		n = read(fd, small, sizeof(small) - 1);
	while (n < 0 && errno == EINTR);
	close(fd);
	if (n < 0)
		return -errno;
	small[n] = '\0';
	if (n == sizeof(small) - 1) {
		snprintf(name, sizeof(name), "fdinfo/%d", d->fd);
		big = read_proc(d->pid, name, NULL);
		if (!big)
			return -errno ? -errno : -EIO;
		buf = big;
	}
	/* strto*() skip the tab after the colon, as sscanf's " %llu" did. */
	for (char *rest = buf; (p = next_line(&rest));) {
		if (!strncmp(p, "pos:", 4))
			pos = strtoull(p + 4, NULL, 10);
		else if (!strncmp(p, "flags:", 6))
			flags = strtoul(p + 6, NULL, 8);
		else if (!strncmp(p, "mnt_id:", 7))
			mnt_id = strtol(p + 7, NULL, 10);
		else if (!strncmp(p, "lock:", 5))
			d->has_locks = true;
	}
	d->pos = pos;
	d->cloexec = flags & O_CLOEXEC;
	d->flags = flags & ~O_CLOEXEC;
	d->mnt_id = mnt_id;
	return 0;
}

static int describe_fd(pid_t pid, int pidfd, const struct proc_fd_dirs *dirs, int fd,
		       struct fd_desc *d)
{
	char name[16];
	ssize_t n;
	int ret;

	d->pid = pid;
	d->fd = fd;
	d->pidfd = pidfd;
	/* Relative to the task's fd directories: no walk of /proc/PID per fd. */
	snprintf(name, sizeof(name), "%d", fd);
	if (fstatat(dirs->fd, name, &d->st, 0)) {
		pr_perror("fd %d of pid %d: can't stat /proc/%d/fd/%d", fd, pid, pid, fd);
		return -errno;
	}
	ret = parse_fdinfo(d, dirs->info, name);
	if (ret)
		return ret;
	/*
	 * A socket's link is its inode's number: no readlink for each of
	 * thousands. An O_PATH fd of a socket file links to its path.
	 */
	if (S_ISSOCK(d->st.st_mode) && !(d->flags & O_PATH)) {
		int sk = files_peekfd(d);
		socklen_t l = sizeof(d->family);

		snprintf(d->link, sizeof(d->link), "socket:[%llu]", (unsigned long long)d->st.st_ino);
		if (sk < 0 || getsockopt(sk, SOL_SOCKET, SO_DOMAIN, &d->family, &l)) {
			pr_perror("fd %d of pid %d: can't read the socket's family", fd, pid);
			return sk < 0 ? sk : -errno;
		}
		return 0;
	}
	n = readlinkat(dirs->fd, name, d->link, sizeof(d->link) - 1);
	if (n < 0) {
		pr_perror("fd %d of pid %d: can't read /proc/%d/fd/%d", fd, pid, pid, fd);
		return -errno;
	}
	d->link[n] = '\0';
	return 0;
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
	if (S_ISSOCK(d->st.st_mode)) {
		snprintf(buf, len, "socket of family %d", d->family);
		return buf;
	}
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

static int dump_new_file(struct files_dump_ctx *fc, const struct fd_desc *d, FdTypes *type,
			 uint32_t *id)
{
	const struct files_type *ft = NULL;
	const struct fd_desc *prev;
	bool prev_used;
	int ret;

	/* An O_PATH fd is a path, whatever it names (a FIFO, a socket): saved as one. */
	if (d->flags & O_PATH && d->link[0] == '/')
		ft = &files_reg_type;
	for (int i = 0; i < files_nr_types && !ft; i++)
		if (files_types[i]->match(d))
			ft = files_types[i];
	if (!ft)
		return unsupported(d);
	*type = ft->type;
	prev = fc->st->cur;
	prev_used = fc->st->cur_used;
	fc->st->cur = d;
	fc->st->cur_used = false;
	ret = ft->dump(fc, d, id);
	fc->st->cur = prev;
	fc->st->cur_used = prev_used;
	if (ret)
		return ret;
	return remember(fc->st, d, *id, *type);
}

/* A file amber holds as @fd (one in flight in a socket queue), as a task's fd is. */
static int dump_own_fd(struct files_dump_ctx *fc, int fd, uint32_t *id)
{
	struct fd_desc *d = xzalloc(sizeof(*d));
	cleanup_close int pidfd = syscall(SYS_pidfd_open, getpid(), 0);
	struct proc_fd_dirs dirs;
	struct dumped_file *old;
	FdTypes type;
	int ret;

	if (!d || pidfd < 0) {
		files_desc_free(d);
		return d ? -errno : -ENOMEM;
	}
	ret = open_fd_dirs(getpid(), &dirs);
	if (ret) {
		files_desc_free(d);
		return ret;
	}
	ret = describe_fd(getpid(), pidfd, &dirs, fd, d);
	close_fd_dirs(&dirs);
	d->pids = fc->pids;
	old = ret ? NULL : find_dumped(fc->st, d);
	if (old)
		*id = old->id;
	else if (!ret)
		ret = dump_new_file(fc, d, &type, id);
	files_desc_free(d);
	return ret;
}

/* Saves fd @fd of @pid in @img: 0, 1 if it is amber's tracker (not saved), or -errno. */
static int dump_one_fd(struct files_dump_ctx *fc, struct img *img, pid_t pid, int pidfd,
		       const struct proc_fd_dirs *dirs, int fd)
{
	struct fd_desc *d = xzalloc(sizeof(*d));
	FdinfoEntry fe = FDINFO_ENTRY__INIT;
	struct dumped_file *old;
	FdTypes type = FD_TYPES__UND;
	uint32_t id = 0;
	int ret;

	if (!d)
		return -ENOMEM;
	ret = describe_fd(pid, pidfd, dirs, fd, d);
	if (ret)
		goto out;
	d->pids = fc->pids;
	if (!strcmp(d->link, "anon_inode:[userfaultfd]")) {
		/* amber's own memory tracker is not the task's: never saved. */
		if (track_is_tracker_fd(pid, fd)) {
			pr_info("pid %d fd %d: amber's memory tracker, not saved\n", pid, fd);
			ret = 1;
			goto out;
		}
		pr_err("fd %d of pid %d: a userfaultfd of the task's own is not supported\n", fd,
		       pid);
		ret = -ENOTSUP;
		goto out;
	}
	old = find_dumped(fc->st, d);
	if (old) {
		const struct files_type *ft = files_type_of(old->type);

		id = old->id;
		type = old->type;
		if (old->pid != pid && ft->one_task && ft->one_task(d)) {
			pr_err("fd %d of pid %d: a %s shared with fd %d of pid %d is not supported\n",
			       fd, pid, ft->name, old->fd, old->pid);
			ret = -ENOTSUP;
			goto out;
		}
	} else {
		ret = dump_new_file(fc, d, &type, &id);
		if (ret)
			goto out;
	}
	if (d->has_locks) {
		ret = files_dump_locks(fc, d, id);
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
	files_desc_free(d);
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

int files_dump_task(struct files_dump_ctx *fc, pid_t pid, uint32_t *files_id)
{
	cleanup_free int *fds = NULL;
	cleanup_close int pidfd = -1;
	struct proc_fd_dirs dirs;
	struct img *img;
	int nr, ret = 0;

	if (!*files_id)
		*files_id = files_new_id(fc);
	pidfd = syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0) {
		pr_perror("pidfd_open(%d)", pid);
		return -errno;
	}
	nr = list_fds(pid, &fds);
	if (nr < 0)
		return nr;
	ret = open_fd_dirs(pid, &dirs);
	if (ret)
		return ret;
	img = img_open(fc->dirfd, IMG_FDINFO, true, *files_id);
	if (!img) {
		ret = -errno;
		close_fd_dirs(&dirs);
		return ret;
	}
	for (int i = 0; i < nr && ret >= 0; i++)
		ret = dump_one_fd(fc, img, pid, pidfd, &dirs, fds[i]);
	close_fd_dirs(&dirs);
	ret = min(ret, 0);
	if (ret) {
		img_close(img);
		return ret;
	}
	pr_info("pid %d: %d fds in fdinfo-%u.img\n", pid, nr, *files_id);
	return img_close(img);
}

int files_dump_fini(struct files_dump_ctx *fc)
{
	struct files_dump *fd = fc->st;
	int ret = 0, r;

	if (!fd)
		return 0;
	for (int i = 0; i < files_nr_types; i++) {
		r = files_types[i]->dump_fini ? files_types[i]->dump_fini(fc) : 0;
		if (r && !ret)
			ret = r;
	}
	r = files_locks_dump_fini(fc);
	if (r && !ret)
		ret = r;
	r = img_close(fd->files_img);
	fd->files_img = NULL;
	return ret ? ret : r;
}

int files_dump_resume(struct files_dump_ctx *fc)
{
	if (!fc->st)
		return 0;
	files_tcp_dump_resume(fc->st);
	files_pty_dump_resume(fc);
	return 0;
}

void files_dump_free(struct files_dump_ctx *fc)
{
	struct files_dump *fd = fc->st;

	if (!fd)
		return;
	for (int i = 0; i < files_nr_types; i++)
		if (files_types[i]->dump_free)
			files_types[i]->dump_free(fc);
	files_locks_dump_free(fc);
	sock_diag_close(&fd->diag);
	img_close(fd->files_img);
	desc_index_free(&fd->index);
	free(fd->files);
	free(fd);
	fc->st = NULL;
}

/* ---- restore: load ---- */

static int cmp_rfile(const void *a, const void *b)
{
	uint32_t x = ((const struct rfile *)a)->fe->id, y = ((const struct rfile *)b)->fe->id;

	return x < y ? -1 : x > y;
}

/* Is the sub-message of @fe the one its type says, with the same id? */
static int check_entry(struct files_rst_ctx *fc, FileEntry *fe)
{
	const struct files_type *ft = files_type_of(fe->type);

	if (!ft || !ft->check) {
		pr_err("files.img: file %u has type %d, which amber can't restore\n", fe->id,
		       fe->type);
		return -EINVAL;
	}
	return ft->check(fc, fe) ?: files_check_owner(fc, fe);
}

static int load_files_img(struct files_rst_ctx *fc)
{
	struct files_rst *fr = fc->st;
	struct img *img = img_open(fc->dirfd, IMG_FILES, false, 0);
	ProtobufCMessage *m;
	int ret;

	if (!img)
		return -errno;
	while ((ret = img_read_msg(img, &file_entry__descriptor, &m)) == 1) {
		struct rfile *n = xrealloc_array(fr->files, fr->nr_files + 1, sizeof(*n));

		if (!n) {
			protobuf_c_message_free_unpacked(m, NULL);
			ret = -ENOMEM;
			break;
		}
		fr->files = n;
		n[fr->nr_files++] = (struct rfile){ .fe = (FileEntry *)m, .svc_fd = -1,
						     .last_task = -1, .ghost_fd = -1,
						     .home_fd = -1 };
		ret = check_entry(fc, (FileEntry *)m);
		if (ret)
			break;
	}
	img_close(img);
	if (ret < 0)
		return ret;
	if (fr->nr_files) /* qsort(NULL, 0) is undefined */
		qsort(fr->files, fr->nr_files, sizeof(*fr->files), cmp_rfile);
	for (int i = 1; i < fr->nr_files; i++) {
		if (fr->files[i].fe->id == fr->files[i - 1].fe->id) {
			pr_err("files.img: file id %u appears twice\n", fr->files[i].fe->id);
			return -EINVAL;
		}
	}
	return 0;
}

static int add_fd(struct rtask_fds *tf, FdinfoEntry *e)
{
	FdinfoEntry **n = xrealloc_array(tf->fds, tf->nr + 1, sizeof(*n));

	if (!n)
		return -ENOMEM;
	tf->fds = n;
	n[tf->nr++] = e;
	return 0;
}

/* @seen: the task's fds so far, by number (a task may hold thousands). */
static int check_fd(struct files_rst *fr, int ti, const char *img, FdinfoEntry *e,
		    struct idx_map *seen)
{
	struct rtask_fds *tf = &fr->tasks[ti];
	struct rfile *rf = files_rfile(fr, e->id);

	if (!rf || rf->fe->type != e->type) {
		pr_err("%s: fd %u refers to file %u (type %d), %s in files.img\n", img, e->fd,
		       e->id, e->type, rf ? "which has another type" : "which is missing");
		return -EINVAL;
	}
	if (e->fd >= FILES_MAX_FD) {
		pr_err("%s: fd number %u is too large\n", img, e->fd);
		return -EINVAL;
	}
	if (idx_map_get(seen, e->fd) >= 0) {
		pr_err("%s: fd %u appears twice\n", img, e->fd);
		return -EINVAL;
	}
	if (idx_map_put(seen, e->fd, tf->nr))
		return -ENOMEM;
	if (rf->last_task != ti) {
		rf->last_task = ti;
		rf->home_fd = rf->nr_tasks++ ? -1 : (int)e->fd;
	}
	return 0;
}

static int load_fdinfo(struct files_rst_ctx *fc, int ti, const struct files_task *t)
{
	struct files_rst *fr = fc->st;
	struct idx_map seen = {};
	struct img *img;
	ProtobufCMessage *m;
	int ret;

	fr->tasks[ti].pid = t->pid;
	if (t->zombie)
		return 0;
	img = img_open(fc->dirfd, IMG_FDINFO, false, t->files_id);
	if (!img)
		return -errno;
	while ((ret = img_read_msg(img, &fdinfo_entry__descriptor, &m)) == 1) {
		ret = check_fd(fr, ti, img->name, (FdinfoEntry *)m, &seen);
		if (!ret)
			ret = add_fd(&fr->tasks[ti], (FdinfoEntry *)m);
		if (ret) {
			protobuf_c_message_free_unpacked(m, NULL);
			break;
		}
	}
	idx_map_free(&seen);
	img_close(img);
	return ret;
}

int files_load(struct files_rst_ctx *fc, const struct files_task *tasks, int nr_tasks)
{
	struct files_rst *fr = xzalloc(sizeof(*fr));
	int ret;

	if (!fr)
		return -ENOMEM;
	fc->st = fr;
	fr->tasks = xzalloc(sizeof(*fr->tasks) * (nr_tasks ? nr_tasks : 1));
	if (!fr->tasks)
		return -ENOMEM;
	fr->nr_tasks = nr_tasks;
	/* Known to the types' load() (a queued message names its sender). */
	for (int i = 0; i < nr_tasks; i++)
		fr->tasks[i].pid = tasks[i].pid;
	ret = load_files_img(fc);
	for (int i = 0; !ret && i < files_nr_types; i++)
		if (files_types[i]->load)
			ret = files_types[i]->load(fc);
	for (int i = 0; !ret && i < nr_tasks; i++)
		ret = load_fdinfo(fc, i, &tasks[i]);
	if (!ret)
		ret = files_locks_load(fc);
	/* The one place this file names types' state: the summary it always logged. */
	if (!ret)
		pr_info("%d files, %d pipe and %d FIFO buffers, %d queued packets\n", fr->nr_files,
			fr->nr_pipe_data, fr->nr_fifo_data, fr->nr_skq);
	return ret;
}

int files_max_fd(struct files_rst_ctx *fc)
{
	struct files_rst *fr = fc->st;
	int max = 0;

	for (int i = 0; fr && i < fr->nr_tasks; i++)
		for (int j = 0; j < fr->tasks[i].nr; j++)
			max = max(max, (int)fr->tasks[i].fds[j]->fd);
	return max;
}

void files_rst_free(struct files_rst_ctx *fc)
{
	struct files_rst *fr = fc->st;

	if (!fr)
		return;
	for (int i = 0; i < fr->nr_files; i++) {
		files_close_fd(&fr->files[i].svc_fd);
		files_close_fd(&fr->files[i].ghost_fd);
		protobuf_c_message_free_unpacked(&fr->files[i].fe->base, NULL);
		if (fr->files[i].ghost)
			protobuf_c_message_free_unpacked(&fr->files[i].ghost->base, NULL);
	}
	for (int i = 0; i < fr->nr_tasks; i++) {
		for (int j = 0; j < fr->tasks[i].nr; j++)
			protobuf_c_message_free_unpacked(&fr->tasks[i].fds[j]->base, NULL);
		free(fr->tasks[i].fds);
	}
	for (int i = 0; i < files_nr_types; i++)
		if (files_types[i]->rst_free)
			files_types[i]->rst_free(fc);
	files_locks_rst_free(fr);
	free(fr->sk_dflts);
	free(fr->tasks);
	free(fr->files);
	free(fr);
	fc->st = NULL;
}

/* ---- restore: before fork ---- */

/* Opens @rf once, as a service fd: several tasks share the description. */
static int open_shared(struct files_rst_ctx *fc, struct rfile *rf)
{
	const struct files_type *ft = files_type_of(rf->fe->type);
	int fd;

	if (!ft->open || (rf->nr_tasks < 2 && !rf->shared && !rf->in_flight) || rf->svc_fd >= 0)
		return 0;
	/* A path of the tree's mounts, which only its root will see. */
	if (fc->defer_paths && (rf->fe->type == FD_TYPES__REG || rf->fe->type == FD_TYPES__FIFO))
		return 0;
	/* A queue of the tree's IPC namespace, which only its root will enter. */
	if (fc->own_ipc && rf->fe->type == FD_TYPES__AMBER_MQUEUE)
		return 0;
	fd = ft->open(fc, rf);
	if (fd < 0)
		return fd;
	rf->svc_fd = files_place(fc, rf, fd);
	return rf->svc_fd < 0 ? rf->svc_fd : 0;
}

/* How many files amber holds before fork, and where: the restore's fd peak. */
static void log_placed(struct files_rst_ctx *fc)
{
	struct files_rst *fr = fc->st;
	int placed = 0, above = 0, hi = -1;

	for (int i = 0; i < fr->nr_files; i++) {
		int fd = fr->files[i].svc_fd;

		if (fd < 0)
			continue;
		if (fd < fc->svc_fd_base)
			placed++;
		else
			above++;
		hi = max(hi, fd);
	}
	pr_info("%d files kept at their own fd numbers, %d above the service base %d; "
		"highest %d\n", placed, above, fc->svc_fd_base, hi);
}

int files_prepare_shared(struct files_rst_ctx *fc)
{
	struct files_rst *fr = fc->st;
	int ret = 0;

	if (!fr)
		return -EINVAL;
	if (fc->svc_fd_base <= files_max_fd(fc)) {
		pr_err("service fds start at %d, below the tasks' fd %d\n", fc->svc_fd_base,
		       files_max_fd(fc));
		return -EINVAL;
	}
	files_sk_dflt_prefill(fr);
	for (int i = 0; !ret && i < files_nr_types; i++)
		if (files_types[i]->prepare)
			ret = files_types[i]->prepare(fc);
	for (int i = 0; !ret && i < fr->nr_files; i++)
		ret = open_shared(fc, &fr->files[i]);
	for (int i = 0; !ret && i < files_nr_types; i++)
		if (files_types[i]->late)
			ret = files_types[i]->late(fc);
	if (!ret)
		log_placed(fc);
	return ret;
}

int files_open_deferred(struct files_rst_ctx *fc)
{
	struct files_rst *fr = fc->st;
	bool defer = fc->defer_paths, own_ipc = fc->own_ipc;
	int ret = 0;

	if (!fr || (!defer && !own_ipc))
		return 0;
	fc->defer_paths = fc->own_ipc = false;
	if (defer)
		ret = files_fifo_make(fc);
	for (int i = 0; !ret && i < fr->nr_files; i++)
		if ((defer && (fr->files[i].fe->type == FD_TYPES__REG ||
			       fr->files[i].fe->type == FD_TYPES__FIFO)) ||
		    (own_ipc && fr->files[i].fe->type == FD_TYPES__AMBER_MQUEUE))
			ret = open_shared(fc, &fr->files[i]);
	fc->defer_paths = defer;
	fc->own_ipc = own_ipc;
	if (!ret && defer)
		ret = files_epoll_add_in_tree(fc);
	/* The tree's own namespace: every description of an unlinked queue is open. */
	if (!ret && own_ipc)
		ret = files_mq_unlink_ghosts(fc);
	return ret;
}

int files_check_mntns(struct files_rst_ctx *fc)
{
	struct files_rst *fr = fc->st;

	for (int i = 0; fr && i < fr->nr_files; i++) {
		const struct rfile *rf = &fr->files[i];
		const FileEntry *fe = rf->fe;
		const char *why = NULL;

		switch (fe->type) {
		case FD_TYPES__REG:
			why = rf->ghost ? "an unlinked file" : NULL;
			break;
		case FD_TYPES__UNIXSK:
			/* path names are bound in the restored root (unix_rst.c) */
			why = fe->usk && fe->usk->name.len && fe->usk->name.data[0] &&
					      fe->usk->name_dir
				      ? "a unix socket bound to a relative path"
				      : NULL;
			break;
		case FD_TYPES__INOTIFY:
		case FD_TYPES__FANOTIFY:
			why = "an inotify or fanotify watch";
			break;
		case FD_TYPES__TTY:
			/* the container's terminal and pty pairs: made in its devpts (pty.c) */
			why = files_rpty_orphan(fr, fe) || files_rpty_of(fr, fe)
				      ? NULL
				      : "a terminal other than a pty pair of the tree's or its own "
					"terminal (orphan_pts_master)";
			break;
		default:
			break;
		}
		if (why) {
			pr_err("file %u is %s: not supported yet in a tree restored with a mount "
			       "namespace of its own (amber would make it among its own mounts)\n",
			       fe->id, why);
			return -EOPNOTSUPP;
		}
	}
	return 0;
}

int files_finish_shared(struct files_rst_ctx *fc)
{
	int ret = 0;

	if (!fc->st)
		return -EINVAL;
	for (int i = 0; !ret && i < files_nr_types; i++)
		if (files_types[i]->finish)
			ret = files_types[i]->finish(fc);
	files_release_placed(fc);
	return ret;
}

void files_release_placed(struct files_rst_ctx *fc)
{
	struct files_rst *fr = fc->st;

	for (int i = 0; fr && i < fr->nr_files; i++)
		if (fr->files[i].svc_fd >= 0 && fr->files[i].svc_fd < fc->svc_fd_base)
			files_close_fd(&fr->files[i].svc_fd);
}

/* ---- restore: in each task, after fork ---- */

/* The F_SETFL flags of @fe, as its type keeps them. */
static uint32_t file_flags(struct files_rst *fr, const FileEntry *fe)
{
	const struct files_type *ft = files_type_of(fe->type);

	return ft && ft->flags ? ft->flags(fr, fe) : 0;
}

static int set_status_flags(int fd, uint32_t flags)
{
	int cur = fcntl(fd, F_GETFL), want;

	if (cur < 0)
		return -errno;
	want = (cur & ~FILES_SETFL_MASK) | (flags & FILES_SETFL_MASK);
	if (want != cur && fcntl(fd, F_SETFL, want)) {
		pr_perror("fd %d: can't set file flags %#o", fd, want);
		return -errno;
	}
	return 0;
}

/*
 * Closes every fd below the service base that the task should not have.
 * By ranges, without /proc: a task in a restored mount namespace may
 * have none mounted.
 */
static int close_unlisted(struct files_rst_ctx *fc, struct rtask_fds *tf)
{
	int *keep = calloc(tf->nr + 2, sizeof(*keep)), nr = 0, from = 0;

	if (!keep)
		return -ENOMEM;
	for (int i = 0; i < tf->nr; i++)
		keep[nr++] = (int)tf->fds[i]->fd;
	for (int k = 0; k < 2; k++) {
		int fd = k ? fc->status_fd : log_get_fd();
		bool listed = false;

		if (fd < 0 || fd >= fc->svc_fd_base)
			continue;
		for (int i = 0; i < tf->nr; i++)
			listed |= (int)tf->fds[i]->fd == fd;
		if (!listed) {
			pr_warn("fd %d (amber's log or status pipe) is below the service fds\n", fd);
			keep[nr++] = fd;
		}
	}
	qsort(keep, nr, sizeof(*keep), cmp_int);
	for (int i = 0; i <= nr; i++) {
		int to = i < nr ? keep[i] : fc->svc_fd_base;

		if (to > from && close_range(from, to - 1, 0)) {
			int ret = -errno;

			pr_perror("close_range %d-%d", from, to - 1);
			free(keep);
			return ret;
		}
		if (to + 1 > from)
			from = to + 1;
	}
	free(keep);
	return 0;
}

/*
 * Puts file @rf at fd @e->fd. Its source: amber's copy (rf->svc_fd, which
 * may be at that very number, files_place()), the task's fd of it placed
 * before, or a new description opened here and moved into place at once.
 * So a task holding F fds never holds more than F + 1 below the service
 * base: no copy waits for the others.
 */
static int place_fd(struct files_rst_ctx *fc, struct rtask_fds *tf, int i)
{
	struct files_rst *fr = fc->st;
	FdinfoEntry *e = tf->fds[i];
	struct rfile *rf = files_rfile(fr, e->id);
	int src = rf->svc_fd, fresh = -1, ret = 0;

	if (src < 0 && rf->nr_tasks == 1 && rf->home_fd >= 0 && rf->home_fd != (int)e->fd)
		src = rf->home_fd; /* the task's first fd of it: placed already */
	for (int j = 0; src < 0 && rf->nr_tasks > 1 && j < i; j++)
		if (tf->fds[j]->id == e->id)
			src = (int)tf->fds[j]->fd;
	if (src < 0) {
		const struct files_type *ft = files_type_of(rf->fe->type);

		if (!ft->open) {
			pr_err("file %u (fd %u) was not prepared\n", rf->fe->id, e->fd);
			return -EINVAL;
		}
		src = fresh = ft->open(fc, rf);
		if (fresh < 0)
			return fresh;
	}
	if (src == (int)e->fd) {
		if (fcntl(src, F_SETFD, e->flags & FD_CLOEXEC ? FD_CLOEXEC : 0)) {
			pr_perror("pid %d: fd %u", tf->pid, e->fd);
			ret = -errno;
		}
		fresh = -1; /* opened right at its number */
	} else if (dup3(src, e->fd, e->flags & FD_CLOEXEC ? O_CLOEXEC : 0) < 0) {
		pr_perror("pid %d: can't put file %u at fd %u", tf->pid, e->id, e->fd);
		ret = -errno;
	}
	if (fresh >= 0)
		close(fresh);
	if (!ret)
		ret = set_status_flags(e->fd, file_flags(fr, rf->fe));
	if (!ret)
		ret = files_restore_fown(e->fd, rf->fe);
	return ret;
}

int files_restore_task(struct files_rst_ctx *fc, int ti)
{
	struct files_rst *fr = fc->st;
	struct rtask_fds *tf;
	int ret = 0;

	if (!fr || ti < 0 || ti >= fr->nr_tasks)
		return -EINVAL;
	tf = &fr->tasks[ti];
	for (int i = 0; !ret && i < tf->nr; i++)
		ret = place_fd(fc, tf, i);
	if (!ret)
		ret = close_unlisted(fc, tf);
	if (!ret)
		pr_info("pid %d: %d fds restored\n", tf->pid, tf->nr);
	return ret;
}
