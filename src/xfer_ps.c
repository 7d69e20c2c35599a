// SPDX-License-Identifier: MIT
/*
 * Page transfer to a page server (xfer.h): the dump side of CRIU's
 * page-server protocol (ps_proto.h). Pages go out as ADD_F headers each
 * followed by its data; the server answers only OPEN2 and CLOSE.
 */
#define LOG_PREFIX "xfer-ps: "
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "image_magic.h"
#include "log.h"
#include "ps_conn.h"
#include "util.h"
#include "xfer_internal.h"

struct ps_target {
	struct xfer_target t;
	struct ps_conn c;
};

/* xfer_add_fill() fills and sends this much at a time. */
#define FILL_BYTES (256 * 1024)

struct ps_xfer {
	struct xfer x;
	uint64_t dst_id;
	uint8_t *buf; /* FILL_BYTES, for xfer_add_fill() */
};

static struct ps_conn *conn_of(struct xfer_target *t)
{
	return &((struct ps_target *)t)->c;
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
	px->dst_id = ps_encode_dst(kind == XFER_TASK ? PS_TYPE_PID : PS_TYPE_SHMEM, id);
	pi.dst_id = px->dst_id;
	ret = ps_send_iov(conn_of(t), &pi);
	if (!ret)
		ret = ps_conn_recv(conn_of(t), &has_parent, 1);
	if (ret) {
		pr_err("page server %s: OPEN2 %lu: %s\n", conn_of(t)->peer, id, strerror(-ret));
		free(px);
		return ret;
	}
	*out = &px->x;
	return 0;
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
	while (nr_pages && !ret) {
		uint64_t n = min(nr_pages, (uint64_t)PS_MAX_NR_PAGES);

		pi.vaddr = vaddr;
		pi.nr_pages = n;
		ret = ps_send_iov(conn_of(x->t), &pi);
		vaddr += n * PAGE_SIZE;
		nr_pages -= n;
	}
	return ret;
}

static int ps_close(struct xfer *x)
{
	free(((struct ps_xfer *)x)->buf);
	free(x);
	return 0;
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
    .fini = ps_fini,
};

struct xfer_target *xfer_target_ps(struct ps_conn *c)
{
	struct ps_target *pt = xzalloc(sizeof(*pt));

	if (!pt)
		return NULL;
	pt->t.ops = &ps_ops;
	pt->c = *c;
	c->fd = -1;
	c->tls = c->tls_cred = NULL;
	return &pt->t;
}
