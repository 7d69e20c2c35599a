// SPDX-License-Identifier: MIT
/* Page transfer: the calls dump code makes, dispatched to a backend. */
#define LOG_PREFIX "xfer: "
#include <errno.h>
#include <stddef.h>

#include "base/log.h"
#include "mem/xfer_internal.h"

int xfer_open(struct xfer_target *t, enum xfer_kind kind, unsigned long id, struct xfer **out)
{
	int ret;

	*out = NULL;
	if (t->busy) {
		pr_err("pagemap %lu opened while another one is open\n", id);
		return -EBUSY;
	}
	ret = t->ops->open(t, kind, id, out);
	t->busy = !ret;
	return ret;
}

int xfer_has_parent(struct xfer_target *t, enum xfer_kind kind, unsigned long id)
{
	return t->ops->has_parent ? t->ops->has_parent(t, kind, id) : 1;
}

int xfer_add(struct xfer *x, uint64_t vaddr, const struct iovec *iov, int iovcnt)
{
	return x->t->ops->add(x, vaddr, iov, iovcnt);
}

int xfer_add_fill(struct xfer *x, uint64_t vaddr, uint64_t nr_pages, xfer_fill_fn *fill, void *arg)
{
	return x->t->ops->add_fill(x, vaddr, nr_pages, fill, arg);
}

int xfer_hole(struct xfer *x, uint64_t vaddr, uint64_t nr_pages, uint32_t pe_flags)
{
	return x->t->ops->hole(x, vaddr, nr_pages, pe_flags);
}

int xfer_close(struct xfer *x)
{
	if (!x)
		return 0;
	x->t->busy = false;
	return x->t->ops->close(x);
}

int xfer_target_fini(struct xfer_target *t)
{
	return t ? t->ops->fini(t, 0) : 0;
}

void xfer_target_abort(struct xfer_target *t)
{
	if (t)
		t->ops->fini(t, -ECANCELED);
}
