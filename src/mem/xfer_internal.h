/* SPDX-License-Identifier: MIT */
#ifndef AMBER_XFER_INTERNAL_H
#define AMBER_XFER_INTERNAL_H

/* What a page-transfer backend implements (see xfer.h). */
#include <stdbool.h>

#include "mem/xfer.h"

struct xfer_ops {
	int (*open)(struct xfer_target *t, enum xfer_kind kind, unsigned long id,
		    struct xfer **out);
	int (*add)(struct xfer *x, uint64_t vaddr, const struct iovec *iov, int iovcnt);
	int (*add_fill)(struct xfer *x, uint64_t vaddr, uint64_t nr_pages, xfer_fill_fn *fill,
			void *arg);
	int (*hole)(struct xfer *x, uint64_t vaddr, uint64_t nr_pages, uint32_t pe_flags);
	int (*close)(struct xfer *x);
	int (*has_parent)(struct xfer_target *t, enum xfer_kind kind, unsigned long id);
	int (*fini)(struct xfer_target *t, int err);
};

struct xfer_target {
	const struct xfer_ops *ops;
	bool busy; /* an xfer is open (xfer.h: one at a time) */
};

struct xfer {
	struct xfer_target *t;
};

#endif
