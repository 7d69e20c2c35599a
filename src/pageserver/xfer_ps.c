// SPDX-License-Identifier: MIT
/*
 * Page transfer to a page server (xfer.h): the dump side of CRIU's
 * page-server protocol (pageserver/proto.h). Pages go out as ADD_F headers each
 * followed by its data, PE_PARENT runs as ADD_F without data (only where
 * the server's OPEN2 answer said it keeps a parent image); the server
 * answers only OPEN2 and CLOSE. What a task pagemap said is also written
 * to sent-pagemap-<pid>.img in the dump's own directory.
 */
#define LOG_PREFIX "xfer-ps: "
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "image/image.h"
#include "image/magic.h"
#include "base/log.h"
#include "pagemap.pb-c.h"
#include "pageserver/conn.h"
#include "base/util.h"
#include "mem/xfer_internal.h"

struct ps_target {
	struct xfer_target t;
	struct ps_conn c;
	int copy_dirfd; /* for sent-pagemap-<pid>.img, -1: none */
};

/* xfer_add_fill() fills and sends this much at a time. */
#define FILL_BYTES (256 * 1024)

struct ps_xfer {
	struct xfer x;
	uint64_t dst_id;
	unsigned long id;
	bool has_parent;  /* the server keeps a parent image of this pagemap */
	uint8_t *buf;	  /* FILL_BYTES, for xfer_add_fill() */
	struct img *copy; /* sent-pagemap-<pid>.img, NULL: not a task or no copy */
};

/* One run, as sent, into the local copy. */
static int copy_run(struct ps_xfer *px, uint64_t vaddr, uint64_t nr_pages, uint32_t flags)
{
	PagemapEntry pe = PAGEMAP_ENTRY__INIT;

	if (!px->copy)
		return 0;
	pe.vaddr = vaddr;
	pe.nr_pages = nr_pages;
	pe.has_flags = true;
	pe.flags = flags;
	return img_write_msg(px->copy, &pe.base);
}

static struct ps_conn *conn_of(struct xfer_target *t)
{
	return &((struct ps_target *)t)->c;
}

/*
 * The socket is TCP_NODELAY (replies are small and awaited), so between
 * requests that await a reply it is corked: a run of headers and page
 * data leaves in full segments instead of one per send. Uncorking sends
 * what is queued, before a request whose answer we wait for.
 */
static void cork(struct xfer_target *t, int on)
{
	setsockopt(conn_of(t)->fd, IPPROTO_TCP, TCP_CORK, &on, sizeof(on));
}

static int ps_open(struct xfer_target *t, enum xfer_kind kind, unsigned long id, struct xfer **out)
{
	struct ps_xfer *px = xzalloc(sizeof(*px));
	struct ps_iov pi = {.cmd = PS_IOV_OPEN2};
	uint8_t has_parent;
	int ret;

	if (!px)
		return -ENOMEM;
	px->x.t = t;
	px->id = id;
	px->dst_id = ps_encode_dst(kind == XFER_TASK ? PS_TYPE_PID : PS_TYPE_SHMEM, id);
	pi.dst_id = px->dst_id;
	ret = ps_send_iov(conn_of(t), &pi);
	cork(t, 0);
	if (!ret)
		ret = ps_conn_recv(conn_of(t), &has_parent, 1);
	cork(t, 1);
	if (ret) {
		pr_err("page server %s: OPEN2 %lu: %s\n", conn_of(t)->peer, id, strerror(-ret));
		free(px);
		return ret;
	}
	px->has_parent = has_parent;
	if (kind == XFER_TASK && ((struct ps_target *)t)->copy_dirfd >= 0) {
		PagemapHead ph = PAGEMAP_HEAD__INIT; /* pages_id 0: no pages here */

		px->copy = img_open(((struct ps_target *)t)->copy_dirfd, IMG_SENT_PAGEMAP, true, id);
		if (!px->copy || img_write_msg(px->copy, &ph.base)) {
			ret = errno ? -errno : -EIO;
			t->ops->close(&px->x);
			return ret;
		}
	}
	*out = &px->x;
	return 0;
}

/* PS_IOV_PARENT: the server's int32, 1 if it has the parent pagemap. */
static int ps_has_parent(struct xfer_target *t, enum xfer_kind kind, unsigned long id)
{
	struct ps_iov pi = {.cmd = PS_IOV_PARENT};
	int32_t has = 0;
	int ret;

	pi.dst_id = ps_encode_dst(kind == XFER_TASK ? PS_TYPE_PID : PS_TYPE_SHMEM, id);
	ret = ps_send_iov(conn_of(t), &pi);
	cork(t, 0);
	if (!ret)
		ret = ps_conn_recv(conn_of(t), &has, sizeof(has));
	cork(t, 1);
	if (ret) {
		pr_err("page server %s: PARENT %lu: %s\n", conn_of(t)->peer, id, strerror(-ret));
		return ret;
	}
	return has != 0;
}

static int ps_add(struct xfer *x, uint64_t vaddr, const struct iovec *iov, int iovcnt)
{
	struct ps_xfer *px = (struct ps_xfer *)x;
	struct ps_conn *c = conn_of(x->t);
	struct ps_iov pi = {.cmd = PS_IOV_ADD_F, .flags = PE_PRESENT, .dst_id = px->dst_id};
	size_t total = 0;
	int ret;

	for (int i = 0; i < iovcnt; i++)
		total += iov[i].iov_len;
	if ((total | vaddr) & (PAGE_SIZE - 1) || total / PAGE_SIZE > PS_MAX_NR_PAGES)
		return -EINVAL;
	pi.vaddr = vaddr;
	pi.nr_pages = total / PAGE_SIZE;
	ret = ps_send_iov(c, &pi);
	for (int i = 0; i < iovcnt && !ret; i++)
		ret = ps_conn_send(c, iov[i].iov_base, iov[i].iov_len);
	if (!ret)
		ret = copy_run(px, vaddr, pi.nr_pages, PE_PRESENT);
	if (ret)
		pr_err("page server %s: sending %zu bytes at %#lx: %s\n", c->peer, total,
		       (unsigned long)vaddr, strerror(-ret));
	return ret;
}

static int ps_add_fill(struct xfer *x, uint64_t vaddr, uint64_t nr_pages, xfer_fill_fn *fill,
		       void *arg)
{
	struct ps_xfer *px = (struct ps_xfer *)x;
	struct ps_conn *c = conn_of(x->t);
	struct ps_iov pi = {.cmd = PS_IOV_ADD_F, .flags = PE_PRESENT, .dst_id = px->dst_id};
	uint64_t total = nr_pages * PAGE_SIZE;
	int ret;

	if (vaddr & (PAGE_SIZE - 1) || nr_pages > PS_MAX_NR_PAGES)
		return -EINVAL;
	if (!px->buf && !(px->buf = malloc(FILL_BYTES)))
		return -ENOMEM;
	pi.vaddr = vaddr;
	pi.nr_pages = nr_pages;
	ret = ps_send_iov(c, &pi);
	for (uint64_t off = 0; off < total && !ret; off += FILL_BYTES) {
		size_t n = min(total - off, (uint64_t)FILL_BYTES);

		ret = fill(arg, px->buf, off, n);
		if (ret)
			return ret; /* fill said why */
		ret = ps_conn_send(c, px->buf, n);
	}
	if (!ret)
		ret = copy_run(px, vaddr, nr_pages, PE_PRESENT);
	if (ret)
		pr_err("page server %s: sending %llu bytes at %#lx: %s\n", c->peer,
		       (unsigned long long)total, (unsigned long)vaddr, strerror(-ret));
	return ret;
}

static int ps_hole(struct xfer *x, uint64_t vaddr, uint64_t nr_pages, uint32_t pe_flags)
{
	struct ps_xfer *px = (struct ps_xfer *)x;
	struct ps_iov pi = {.cmd = PS_IOV_ADD_F, .flags = pe_flags, .dst_id = px->dst_id};
	int ret = 0;

	if (pe_flags & PE_PRESENT)
		return -EINVAL;
	if ((pe_flags & PE_PARENT) && !px->has_parent) {
		pr_err("page server %s keeps no parent image of pagemap %lu, which this "
		       "incremental dump refers to: start it with --prev-images-dir, as the "
		       "dump\n", conn_of(x->t)->peer, px->id);
		return -ENOENT;
	}
	while (nr_pages && !ret) {
		uint64_t n = min(nr_pages, (uint64_t)PS_MAX_NR_PAGES);

		pi.vaddr = vaddr;
		pi.nr_pages = n;
		ret = ps_send_iov(conn_of(x->t), &pi);
		if (!ret)
			ret = copy_run(px, vaddr, n, pe_flags);
		vaddr += n * PAGE_SIZE;
		nr_pages -= n;
	}
	return ret;
}

static int ps_close(struct xfer *x)
{
	struct ps_xfer *px = (struct ps_xfer *)x;
	int ret = px->copy && img_close(px->copy) ? -EIO : 0;

	free(px->buf);
	free(px);
	return ret;
}

/* CLOSE, then the server's int32 status once everything is on its disk. */
static int ps_fini(struct xfer_target *t, int err)
{
	struct ps_conn *c = conn_of(t);
	struct ps_iov pi = {.cmd = PS_IOV_CLOSE};
	int32_t status = -1;
	int ret = err;

	if (!err) {
		ret = ps_send_iov(c, &pi);
		cork(t, 0);
		if (!ret)
			ret = ps_conn_recv(c, &status, sizeof(status));
		if (ret)
			pr_err("page server %s did not acknowledge the pages: %s\n", c->peer,
			       strerror(-ret));
		else if (status) {
			pr_err("page server %s failed to store the pages (status %d)\n", c->peer,
			       status);
			ret = -EIO;
		}
	}
	ps_conn_close(c);
	free(t);
	return ret;
}

static const struct xfer_ops ps_ops = {
    .open = ps_open,
    .add = ps_add,
    .add_fill = ps_add_fill,
    .hole = ps_hole,
    .close = ps_close,
    .has_parent = ps_has_parent,
    .fini = ps_fini,
};

struct xfer_target *xfer_target_ps(struct ps_conn *c, int copy_dirfd)
{
	struct ps_target *pt = xzalloc(sizeof(*pt));

	if (!pt)
		return NULL;
	pt->t.ops = &ps_ops;
	pt->copy_dirfd = copy_dirfd;
	pt->c = *c;
	c->fd = -1;
	c->tls = c->tls_cred = NULL;
	return &pt->t;
}
