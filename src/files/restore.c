// SPDX-License-Identifier: MIT
/*
 * Restore, step 1: read files.img, every task's fdinfo image and the data
 * images (pipes, FIFOs, socket queues, ghost files) and check that they
 * agree with each other, before anything is forked.
 */
#define LOG_PREFIX "files: "
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fdinfo.pb-c.h"
#include "files/files.h"
#include "files/files_internal.h"
#include "ghost-file.pb-c.h"
#include "image/image.h"
#include "base/log.h"
#include "pipe-data.pb-c.h"
#include "restore/restore.h"
#include "sk-packet.pb-c.h"
#include "base/util.h"

static int cmp_rfile(const void *a, const void *b)
{
	uint32_t x = ((const struct rfile *)a)->fe->id, y = ((const struct rfile *)b)->fe->id;

	return x < y ? -1 : x > y;
}

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

struct rfile *files_usk_by_ino(struct files_rst *fr, uint32_t ino)
{
	for (int i = 0; i < fr->nr_files; i++) {
		FileEntry *fe = fr->files[i].fe;

		if (fe->type == FD_TYPES__UNIXSK && fe->usk->ino == ino)
			return &fr->files[i];
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

static bool has_pipe(struct files_rst *fr, uint32_t pipe_id, FdTypes type)
{
	for (int i = 0; i < fr->nr_files; i++) {
		FileEntry *fe = fr->files[i].fe;

		if (fe->type == type && type == FD_TYPES__PIPE && fe->pipe->pipe_id == pipe_id)
			return true;
		if (fe->type == type && type == FD_TYPES__FIFO && fe->fifo->pipe_id == pipe_id)
			return true;
	}
	return false;
}

/* Is the sub-message of @fe the one its type says, with the same id? */
static int check_entry(struct rst_ctx *rc, FileEntry *fe)
{
	uint32_t sub = 0;
	bool ok = false;

	switch (fe->type) {
	case FD_TYPES__REG:
		ok = fe->reg && fe->reg->name && fe->reg->name[0] == '/';
		sub = ok ? fe->reg->id : 0;
		break;
	case FD_TYPES__PIPE:
		ok = fe->pipe;
		sub = ok ? fe->pipe->id : 0;
		break;
	case FD_TYPES__FIFO:
		ok = fe->fifo && fe->fifo->has_regf_id;
		sub = ok ? fe->fifo->id : 0;
		break;
	case FD_TYPES__UNIXSK:
		ok = fe->usk;
		sub = ok ? fe->usk->id : 0;
		break;
	case FD_TYPES__MEMFD:
		ok = fe->memfd;
		sub = ok ? fe->memfd->id : 0;
		break;
	case FD_TYPES__TTY:
		ok = fe->tty;
		sub = ok ? fe->tty->id : 0;
		if (ok && (!rc->opts || !rc->opts->shell_job)) {
			pr_err("files.img: file %u is a terminal: pass --shell-job to restore it\n",
			       fe->id);
			return -EINVAL;
		}
		break;
	default:
		pr_err("files.img: file %u has type %d, which amber can't restore\n", fe->id,
		       fe->type);
		return -EINVAL;
	}
	if (!ok || sub != fe->id) {
		pr_err("files.img: file %u (type %d) is malformed\n", fe->id, fe->type);
		return -EINVAL;
	}
	return 0;
}

static int load_files_img(struct rst_ctx *rc)
{
	struct files_rst *fr = rc->files;
	struct img *img = img_open(rc->dirfd, IMG_FILES, false, 0);
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
						     .last_task = -1, .ghost_fd = -1 };
		ret = check_entry(rc, (FileEntry *)m);
		if (ret)
			break;
	}
	img_close(img);
	if (ret < 0)
		return ret;
	qsort(fr->files, fr->nr_files, sizeof(*fr->files), cmp_rfile);
	for (int i = 1; i < fr->nr_files; i++) {
		if (fr->files[i].fe->id == fr->files[i - 1].fe->id) {
			pr_err("files.img: file id %u appears twice\n", fr->files[i].fe->id);
			return -EINVAL;
		}
	}
	return 0;
}

/* memfd.img: the memfd inodes; rst_load() makes them shared memory objects. */
static int load_memfds(struct rst_ctx *rc)
{
	struct files_rst *fr = rc->files;
	struct img *img = img_open_optional(rc->dirfd, IMG_MEMFD_INODE, 0);
	ProtobufCMessage *m;
	int ret;

	if (!img)
		return errno == ENOENT ? 0 : -errno;
	while ((ret = img_read_msg(img, &memfd_inode_entry__descriptor, &m)) == 1) {
		MemfdInodeEntry **n = xrealloc_array(fr->memfds, fr->nr_memfds + 1, sizeof(*n));

		if (!n) {
			protobuf_c_message_free_unpacked(m, NULL);
			ret = -ENOMEM;
			break;
		}
		fr->memfds = n;
		n[fr->nr_memfds++] = (MemfdInodeEntry *)m;
	}
	img_close(img);
	return ret < 0 ? ret : 0;
}

MemfdInodeEntry *files_memfd_at(struct rst_ctx *rc, int i)
{
	return rc->files && i < rc->files->nr_memfds ? rc->files->memfds[i] : NULL;
}

MemfdInodeEntry *files_memfd_inode(struct files_rst *fr, uint64_t inode_id)
{
	for (int i = 0; i < fr->nr_memfds; i++)
		if (fr->memfds[i]->inode_id == inode_id)
			return fr->memfds[i];
	return NULL;
}

/* pipes-data.img, fifo-data.img and sk-queues.img: entries + raw payloads. */
static int load_data(struct rst_ctx *rc, enum img_type type, struct rdata **arr, int *nr)
{
	struct img *img = img_open_optional(rc->dirfd, type, 0);
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
			d.id = ((SkPacketEntry *)m)->id_for;
			d.len = ((SkPacketEntry *)m)->length;
		} else {
			PipeDataEntry *p = (PipeDataEntry *)m;

			d.id = p->pipe_id;
			d.len = p->bytes;
			d.size = p->has_size ? p->size : 0;
		}
		protobuf_c_message_free_unpacked(m, NULL);
		if (d.len > FILES_MAX_PIPE_SZ || d.size > FILES_MAX_PIPE_SZ ||
		    (d.size && d.len > d.size) || (!skq && files_rdata(*arr, *nr, d.id))) {
			pr_err("%s: entry for %u is corrupt (%u bytes, size %u)\n", img->name, d.id,
			       d.len, d.size);
			ret = -EINVAL;
			break;
		}
		d.data = malloc(d.len ? d.len : 1);
		n = xrealloc_array(*arr, *nr + 1, sizeof(*n));
		if (!d.data || !n) {
			free(d.data);
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

/* ghost-file-<id>.img exists for unlinked files: check its size now. */
static int load_ghost(struct rst_ctx *rc, struct rfile *rf)
{
	struct img *img = img_open_optional(rc->dirfd, IMG_GHOST_FILE, rf->fe->id);
	ProtobufCMessage *m = NULL;
	struct stat st;
	off_t at;
	int ret;

	if (!img)
		return errno == ENOENT ? 0 : -errno;
	ret = img_read_msg(img, &ghost_file_entry__descriptor, &m);
	if (ret == 1) {
		rf->ghost = (GhostFileEntry *)m;
		at = img_tell(img);
		ret = fstat(img->fd, &st) || at < 0 ? -errno : 0;
		if (!ret && (rf->ghost->chunks || !S_ISREG(rf->ghost->mode) ||
			     (uint64_t)(st.st_size - at) != rf->ghost->size)) {
			pr_err("%s: holds %lld bytes for a file of %llu (or is not a plain file)\n",
			       img->name, (long long)(st.st_size - at),
			       (unsigned long long)rf->ghost->size);
			ret = -EINVAL;
		}
	} else if (ret == 0) {
		pr_err("%s is empty\n", img->name);
		ret = -EINVAL;
	}
	img_close(img);
	return ret;
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

static int check_fd(struct files_rst *fr, int ti, const char *img, FdinfoEntry *e)
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
	for (int i = 0; i < tf->nr; i++) {
		if (tf->fds[i]->fd == e->fd) {
			pr_err("%s: fd %u appears twice\n", img, e->fd);
			return -EINVAL;
		}
	}
	if (rf->last_task != ti) {
		rf->last_task = ti;
		rf->nr_tasks++;
	}
	return 0;
}

static int load_fdinfo(struct rst_ctx *rc, int ti)
{
	struct files_rst *fr = rc->files;
	struct rst_task *t = &rc->tasks[ti];
	struct img *img;
	ProtobufCMessage *m;
	int ret;

	if (t->zombie)
		return 0;
	img = img_open(rc->dirfd, IMG_FDINFO, false, t->files_id);
	if (!img)
		return -errno;
	while ((ret = img_read_msg(img, &fdinfo_entry__descriptor, &m)) == 1) {
		ret = check_fd(fr, ti, img->name, (FdinfoEntry *)m);
		if (!ret)
			ret = add_fd(&fr->tasks[ti], (FdinfoEntry *)m);
		if (ret) {
			protobuf_c_message_free_unpacked(m, NULL);
			break;
		}
	}
	img_close(img);
	return ret;
}

static int check_usk(struct files_rst *fr, UnixSkEntry *u)
{
	struct rfile *peer = u->peer ? files_usk_by_ino(fr, u->peer) : NULL;

	if (u->peer && (!peer || peer->fe->usk->peer != u->ino)) {
		pr_err("files.img: unix socket %u has peer %u, which is not its socketpair twin\n",
		       u->ino, u->peer);
		return -EINVAL;
	}
	if (u->name.len || (u->type != SOCK_STREAM && u->type != SOCK_DGRAM &&
			    u->type != SOCK_SEQPACKET)) {
		pr_err("files.img: unix socket %u is named or of type %u: can't restore it\n",
		       u->ino, u->type);
		return -EINVAL;
	}
	return 0;
}

/* Cross-references between files.img and the data images. */
static int check_refs(struct files_rst *fr)
{
	for (int i = 0; i < fr->nr_files; i++) {
		FileEntry *fe = fr->files[i].fe;
		struct rfile *reg;

		if (fe->type == FD_TYPES__FIFO) {
			reg = files_rfile(fr, fe->fifo->regf_id);
			if (!reg || reg->fe->type != FD_TYPES__REG) {
				pr_err("files.img: FIFO %u has no path entry %u\n", fe->id,
				       fe->fifo->regf_id);
				return -EINVAL;
			}
		}
		if (fe->type == FD_TYPES__UNIXSK && check_usk(fr, fe->usk))
			return -EINVAL;
	}
	for (int i = 0; i < fr->nr_pipe_data; i++) {
		if (!has_pipe(fr, fr->pipe_data[i].id, FD_TYPES__PIPE)) {
			pr_err("pipes-data.img: data for pipe %u, which no file uses\n",
			       fr->pipe_data[i].id);
			return -EINVAL;
		}
	}
	for (int i = 0; i < fr->nr_fifo_data; i++) {
		if (!has_pipe(fr, fr->fifo_data[i].id, FD_TYPES__FIFO)) {
			pr_err("fifo-data.img: data for FIFO %u, which no file uses\n",
			       fr->fifo_data[i].id);
			return -EINVAL;
		}
	}
	for (int i = 0; i < fr->nr_skq; i++) {
		struct rfile *rf = files_rfile(fr, fr->skq[i].id);

		if (!rf || rf->fe->type != FD_TYPES__UNIXSK ||
		    (!rf->fe->usk->peer && rf->fe->usk->state != 1 /* TCP_ESTABLISHED */)) {
			pr_err("sk-queues.img: packet for %u, which is not a connected unix socket\n",
			       fr->skq[i].id);
			return -EINVAL;
		}
	}
	return 0;
}

int files_load(struct rst_ctx *rc)
{
	struct files_rst *fr = xzalloc(sizeof(*fr));
	int ret;

	if (!fr)
		return -ENOMEM;
	rc->files = fr;
	fr->tasks = xzalloc(sizeof(*fr->tasks) * (rc->nr_tasks ? rc->nr_tasks : 1));
	if (!fr->tasks)
		return -ENOMEM;
	fr->nr_tasks = rc->nr_tasks;
	ret = load_files_img(rc);
	if (!ret)
		ret = load_memfds(rc);
	for (int i = 0; !ret && i < fr->nr_files; i++) {
		FileEntry *fe = fr->files[i].fe;

		if (fe->type == FD_TYPES__MEMFD && !files_memfd_inode(fr, fe->memfd->inode_id)) {
			pr_err("files.img: memfd %u has no inode %u in memfd.img\n", fe->id,
			       fe->memfd->inode_id);
			ret = -EINVAL;
		}
	}
	if (!ret)
		ret = load_data(rc, IMG_PIPES_DATA, &fr->pipe_data, &fr->nr_pipe_data);
	if (!ret)
		ret = load_data(rc, IMG_FIFO_DATA, &fr->fifo_data, &fr->nr_fifo_data);
	if (!ret)
		ret = load_data(rc, IMG_SK_QUEUES, &fr->skq, &fr->nr_skq);
	for (int i = 0; !ret && i < fr->nr_files; i++)
		if (fr->files[i].fe->type == FD_TYPES__REG)
			ret = load_ghost(rc, &fr->files[i]);
	for (int i = 0; !ret && i < rc->nr_tasks; i++)
		ret = load_fdinfo(rc, i);
	if (!ret)
		ret = check_refs(fr);
	if (!ret)
		pr_info("%d files, %d pipe and %d FIFO buffers, %d queued packets\n", fr->nr_files,
			fr->nr_pipe_data, fr->nr_fifo_data, fr->nr_skq);
	return ret;
}

int files_max_fd(struct rst_ctx *rc)
{
	struct files_rst *fr = rc->files;
	int max = 0;

	for (int i = 0; fr && i < fr->nr_tasks; i++)
		for (int j = 0; j < fr->tasks[i].nr; j++)
			max = max(max, (int)fr->tasks[i].fds[j]->fd);
	return max;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

void files_rst_free(struct rst_ctx *rc)
{
	struct files_rst *fr = rc->files;

	if (!fr)
		return;
	for (int i = 0; i < fr->nr_files; i++) {
		close_fd(&fr->files[i].svc_fd);
		close_fd(&fr->files[i].ghost_fd);
		protobuf_c_message_free_unpacked(&fr->files[i].fe->base, NULL);
		if (fr->files[i].ghost)
			protobuf_c_message_free_unpacked(&fr->files[i].ghost->base, NULL);
	}
	for (int i = 0; i < fr->nr_tasks; i++) {
		for (int j = 0; j < fr->tasks[i].nr; j++)
			protobuf_c_message_free_unpacked(&fr->tasks[i].fds[j]->base, NULL);
		free(fr->tasks[i].fds);
	}
	for (int i = 0; i < fr->nr_pipes; i++) {
		close_fd(&fr->pipes[i].fds[0]);
		close_fd(&fr->pipes[i].fds[1]);
	}
	for (int i = 0; i < fr->nr_pipe_data; i++)
		free(fr->pipe_data[i].data);
	for (int i = 0; i < fr->nr_fifo_data; i++)
		free(fr->fifo_data[i].data);
	for (int i = 0; i < fr->nr_skq; i++)
		free(fr->skq[i].data);
	for (int i = 0; i < fr->nr_memfds; i++)
		protobuf_c_message_free_unpacked(&fr->memfds[i]->base, NULL);
	free(fr->memfds);
	free(fr->pipe_data);
	free(fr->fifo_data);
	free(fr->skq);
	free(fr->pipes);
	free(fr->tasks);
	free(fr->files);
	free(fr);
	rc->files = NULL;
}
