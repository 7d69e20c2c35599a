// SPDX-License-Identifier: MIT
/*
 * Helpers shared by the file types: ids and files.img entries on the dump
 * side; rfile lookup, data images and service fds on the restore side.
 * Nothing here knows a type; nothing here calls back into files.c (a
 * file_entry's owner is filled by fown.c, for any type).
 */
#define LOG_PREFIX "files: "
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "files/files_internal.h"
#include "image/image.h"
#include "pipe-data.pb-c.h"
#include "sk-packet.pb-c.h"

#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif

/* ---- dump ---- */

uint32_t files_new_id(struct files_dump_ctx *fc)
{
	return ++*fc->next_id;
}

int files_write_entry(struct files_dump_ctx *fc, const FileEntry *fe)
{
	int ret = files_fill_fown(fc, fe);

	return ret ? ret : img_write_msg(fc->st->files_img, &fe->base);
}

/* Opens a data image on first use. */
int files_get_img(struct files_dump_ctx *fc, struct img **img, enum img_type type)
{
	if (*img)
		return 0;
	*img = img_open(fc->dirfd, type, true, 0);
	return *img ? 0 : -errno;
}

/*
 * Restored sockets are made in the namespace of amber's restoring thread:
 * amber's, or the tree's own (dump.c entered it, restore/ns_net.c makes
 * it again). The task must share this thread's.
 */
bool files_same_netns(pid_t pid)
{
	char path[64];
	struct stat a, b;

	snprintf(path, sizeof(path), "/proc/%d/ns/net", pid);
	return !stat(path, &a) && !stat("/proc/thread-self/ns/net", &b) && a.st_ino == b.st_ino &&
	       a.st_dev == b.st_dev;
}

/* ---- restore ---- */

struct rfile *files_rfile(struct files_rst *fr, uint32_t id)
{
	int lo = 0, hi = fr->nr_files - 1;

	while (lo <= hi) {
		int mid = (lo + hi) / 2;
		uint32_t m = fr->files[mid].fe->id;

		if (m == id)
			return &fr->files[mid];
		if (m < id)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return NULL;
}

struct rdata *files_rdata(struct rdata *arr, int nr, uint32_t id)
{
	for (int i = 0; i < nr; i++)
		if (arr[i].id == id)
			return &arr[i];
	return NULL;
}

static int cmp_data_pos(const void *x, const void *y, void *arg)
{
	const struct rdata *q = arg;
	int a = *(const int *)x, b = *(const int *)y;

	if (q[a].id != q[b].id)
		return q[a].id < q[b].id ? -1 : 1;
	return a - b;
}

int files_sort_data(struct rdata **arrp, int nr)
{
	cleanup_free int *pos = NULL;
	struct rdata *sorted;

	if (nr < 2)
		return 0;
	pos = xrealloc_array(NULL, nr, sizeof(*pos));
	sorted = xrealloc_array(NULL, nr, sizeof(*sorted));
	if (!pos || !sorted) {
		free(sorted);
		return -ENOMEM;
	}
	for (int i = 0; i < nr; i++)
		pos[i] = i;
	qsort_r(pos, nr, sizeof(*pos), cmp_data_pos, *arrp);
	for (int i = 0; i < nr; i++)
		sorted[i] = (*arrp)[pos[i]];
	free(*arrp);
	*arrp = sorted;
	return 0;
}

struct rdata *files_skq_of(struct files_rst *fr, uint32_t id, int *nr)
{
	int lo = 0, hi = fr->nr_skq, first;

	while (lo < hi) {
		int mid = lo + (hi - lo) / 2;

		if (fr->skq[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	first = lo;
	while (lo < fr->nr_skq && fr->skq[lo].id == id)
		lo++;
	*nr = lo - first;
	return *nr ? &fr->skq[first] : NULL;
}

int files_check_sub(const FileEntry *fe, bool ok, uint32_t sub)
{
	if (!ok || sub != fe->id) {
		pr_err("files.img: file %u (type %d) is malformed\n", fe->id, fe->type);
		return -EINVAL;
	}
	return 0;
}

/* The file ids an sk_packet_entry carries (SCM_RIGHTS, at most SCM_MAX_FD). */
static int add_rights(struct rdata *d, const ScmEntry *scm)
{
	uint32_t *n;

	if (scm->type != SCM_RIGHTS || d->nr_rights + scm->n_rights > 253)
		return -EINVAL;
	n = xrealloc_array(d->rights, d->nr_rights + scm->n_rights + 1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	memcpy(n + d->nr_rights, scm->rights, scm->n_rights * sizeof(*n));
	d->rights = n;
	d->nr_rights += scm->n_rights;
	return 0;
}

/* pipes-data.img, fifo-data.img and sk-queues.img: entries + raw payloads. */
int files_load_data(struct files_rst_ctx *fc, enum img_type type, struct rdata **arr, int *nr)
{
	struct img *img = img_open_optional(fc->dirfd, type, 0);
	bool skq = type == IMG_SK_QUEUES;
	ProtobufCMessage *m;
	int ret;

	if (!img)
		return errno == ENOENT ? 0 : -errno;
	while ((ret = img_read_msg(img, skq ? &sk_packet_entry__descriptor
					    : &pipe_data_entry__descriptor, &m)) == 1) {
		struct rdata d = {};
		struct rdata *n;

		if (skq) {
			SkPacketEntry *pe = (SkPacketEntry *)m;

			d.id = pe->id_for;
			d.len = pe->length;
			for (size_t i = 0; i < pe->n_scm && ret >= 0; i++)
				ret = add_rights(&d, pe->scm[i]);
			if (pe->has_addr && pe->addr.len <= sizeof(d.addr)) {
				memcpy(d.addr, pe->addr.data, pe->addr.len);
				d.addr_len = pe->addr.len;
			} else if (pe->has_addr) {
				ret = -EINVAL;
			}
			if (pe->ucred) {
				d.has_ucred = true;
				d.ucred[0] = pe->ucred->pid;
				d.ucred[1] = pe->ucred->uid;
				d.ucred[2] = pe->ucred->gid;
			}
		} else {
			PipeDataEntry *p = (PipeDataEntry *)m;

			d.id = p->pipe_id;
			d.len = p->bytes;
			d.size = p->has_size ? p->size : 0;
		}
		protobuf_c_message_free_unpacked(m, NULL);
		if (ret < 0) {
			free(d.rights);
			pr_err("%s: entry for %u carries bad control data\n", img->name, d.id);
			break;
		}
		if (d.len > FILES_MAX_PIPE_SZ || d.size > FILES_MAX_PIPE_SZ ||
		    (d.size && d.len > d.size) || (!skq && files_rdata(*arr, *nr, d.id))) {
			free(d.rights);
			pr_err("%s: entry for %u is corrupt (%u bytes, size %u)\n", img->name, d.id,
			       d.len, d.size);
			ret = -EINVAL;
			break;
		}
		d.data = malloc(d.len ? d.len : 1);
		n = xrealloc_array(*arr, *nr + 1, sizeof(*n));
		if (!d.data || !n) {
			free(d.data);
			free(d.rights);
			ret = -ENOMEM;
			break;
		}
		*arr = n;
		n[(*nr)++] = d;
		ret = img_read_raw(img, d.data, d.len);
		if (ret)
			break;
	}
	img_close(img);
	return ret < 0 ? ret : 0;
}

void files_free_data(struct rdata *arr, int nr)
{
	for (int i = 0; i < nr; i++) {
		free(arr[i].data);
		free(arr[i].rights);
	}
	free(arr);
}

int files_move_high(int fd, int base)
{
	int nfd;

	if (fd < 0 || fd >= base)
		return fd;
	nfd = fcntl(fd, F_DUPFD_CLOEXEC, base);
	if (nfd < 0 && (errno == EMFILE || errno == EINVAL)) {
		struct rlimit r = {0};

		getrlimit(RLIMIT_NOFILE, &r);
		pr_err("can't move fd %d above %d: RLIMIT_NOFILE is %llu (hard %llu)\n", fd, base,
		       (unsigned long long)r.rlim_cur, (unsigned long long)r.rlim_max);
		errno = EMFILE; /* EINVAL: @base itself is past the limit */
	} else if (nfd < 0) {
		pr_perror("can't move fd %d above %d", fd, base);
	}
	close(fd);
	return nfd < 0 ? -errno : nfd;
}

int files_prepare_each(struct files_rst_ctx *fc, FdTypes type,
		       int (*make)(struct files_rst_ctx *fc, struct rfile *rf))
{
	struct files_rst *fr = fc->st;

	for (int i = 0; i < fr->nr_files; i++) {
		struct rfile *rf = &fr->files[i];
		int fd;

		if (rf->fe->type != type)
			continue;
		fd = make(fc, rf);
		if (fd < 0)
			return fd;
		rf->svc_fd = files_move_high(fd, fc->svc_fd_base);
		if (rf->svc_fd < 0)
			return rf->svc_fd;
	}
	return 0;
}

int files_place(struct files_rst_ctx *fc, struct rfile *rf, int fd)
{
	int home = rf->home_fd;

	if (fd < 0 || home < 0 || home >= fc->svc_fd_base)
		return files_move_high(fd, fc->svc_fd_base);
	if (fd == home)
		return fcntl(fd, F_SETFD, FD_CLOEXEC) ? -errno : fd;
	/* Taken (amber's stdio, a file placed before, one in the making): above the base. */
	if (fcntl(home, F_GETFD) >= 0 || errno != EBADF)
		return files_move_high(fd, fc->svc_fd_base);
	if (dup3(fd, home, O_CLOEXEC) < 0) {
		int ret = -errno;

		pr_perror("can't move fd %d to %d", fd, home);
		close(fd);
		return ret;
	}
	close(fd);
	return home;
}

/* The flags to open a saved file description again with. */
uint32_t files_open_flags(uint32_t flags)
{
	/* O_TMPFILE is __O_TMPFILE | O_DIRECTORY: reopening the file is not opening a directory. */
	if (flags & FILES_O_TMPFILE_BIT)
		flags &= ~O_DIRECTORY;
	return (flags & ~(O_CREAT | O_EXCL | O_TRUNC | FILES_O_TMPFILE_BIT)) | O_NOCTTY | O_CLOEXEC;
}

void files_close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}
