// SPDX-License-Identifier: MIT
/*
 * Local page transfer: pagemap and pages images in a directory, exactly as
 * a dump writes them (xfer.h). The page server writes through it too.
 */
#define LOG_PREFIX "xfer: "
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"
#include "image_magic.h"
#include "log.h"
#include "pagemap.pb-c.h"
#include "util.h"
#include "xfer_internal.h"

#define ENTRY_BYTES (XFER_ENTRY_PAGES * PAGE_SIZE)

struct local_target {
	struct xfer_target t;
	int dirfd;
	uint32_t *next_pages_id;
};

struct local_xfer {
	struct xfer x;
	struct img *pagemap;
	struct img *pages;
	uint8_t *bounce; /* ENTRY_BYTES, for runs given as several iovecs */
};

static int local_open(struct xfer_target *t, enum xfer_kind kind, unsigned long id,
		      struct xfer **out)
{
	struct local_target *lt = (struct local_target *)t;
	struct local_xfer *lx = xzalloc(sizeof(*lx));
	PagemapHead ph = PAGEMAP_HEAD__INIT;

	if (!lx)
		return -ENOMEM;
	lx->x.t = t;
	ph.pages_id = ++*lt->next_pages_id;
	lx->pagemap =
	    img_open(lt->dirfd, kind == XFER_TASK ? IMG_PAGEMAP : IMG_SHMEM_PAGEMAP, true, id);
	lx->pages = lx->pagemap ? img_open(lt->dirfd, IMG_PAGES, true, ph.pages_id) : NULL;
	if (!lx->pages || img_write_msg(lx->pagemap, &ph.base)) {
		int err = errno ? -errno : -EIO;

		t->ops->close(&lx->x);
		return err;
	}
	*out = &lx->x;
	return 0;
}

static int put_entry(struct local_xfer *lx, uint64_t vaddr, const void *data, size_t len)
{
	PagemapEntry pe = PAGEMAP_ENTRY__INIT;
	int ret;

	pe.vaddr = vaddr;
	pe.nr_pages = len / PAGE_SIZE;
	pe.has_flags = true;
	pe.flags = PE_PRESENT;
	pe.has_amber_csum = true;
	pe.amber_csum = amber_csum(data, len, vaddr);
	ret = img_write_msg(lx->pagemap, &pe.base);
	return ret ? ret : img_write_raw(lx->pages, data, len);
}

/* Copies @len bytes starting @skip bytes into @iov into @buf. */
static void gather(const struct iovec *iov, int iovcnt, size_t skip, uint8_t *buf, size_t len)
{
	for (int i = 0; i < iovcnt && len; i++) {
		size_t n;

		if (skip >= iov[i].iov_len) {
			skip -= iov[i].iov_len;
			continue;
		}
		n = min(iov[i].iov_len - skip, len);
		memcpy(buf, (uint8_t *)iov[i].iov_base + skip, n);
		buf += n;
		len -= n;
		skip = 0;
	}
}

static int local_add(struct xfer *x, uint64_t vaddr, const struct iovec *iov, int iovcnt)
{
	struct local_xfer *lx = (struct local_xfer *)x;
	size_t total = 0, off;
	int ret = 0;

	for (int i = 0; i < iovcnt; i++)
		total += iov[i].iov_len;
	if ((total | vaddr) & (PAGE_SIZE - 1))
		return -EINVAL;
	if (iovcnt > 1 && !lx->bounce) {
		lx->bounce = malloc(ENTRY_BYTES);
		if (!lx->bounce)
			return -ENOMEM;
	}
	/* One entry per ENTRY_BYTES, so each carries its own checksum. */
	for (off = 0; off < total && !ret; off += ENTRY_BYTES) {
		size_t len = min(total - off, (size_t)ENTRY_BYTES);
		const uint8_t *data;

		if (iovcnt == 1) {
			data = (const uint8_t *)iov[0].iov_base + off;
		} else {
			gather(iov, iovcnt, off, lx->bounce, len);
			data = lx->bounce;
		}
		ret = put_entry(lx, vaddr + off, data, len);
	}
	return ret;
}

static int local_hole(struct xfer *x, uint64_t vaddr, uint64_t nr_pages, uint32_t pe_flags)
{
	struct local_xfer *lx = (struct local_xfer *)x;
	PagemapEntry pe = PAGEMAP_ENTRY__INIT;
	int ret = 0;

	if (pe_flags & PE_PRESENT)
		return -EINVAL;
	while (nr_pages && !ret) {
		uint32_t n = min(nr_pages, (uint64_t)UINT32_MAX);

		pe.vaddr = vaddr;
		pe.nr_pages = n;
		pe.has_flags = true;
		pe.flags = pe_flags;
		ret = img_write_msg(lx->pagemap, &pe.base);
		vaddr += (uint64_t)n * PAGE_SIZE;
		nr_pages -= n;
	}
	return ret;
}

static int local_close(struct xfer *x)
{
	struct local_xfer *lx = (struct local_xfer *)x;
	int ret = 0;

	if (lx->pagemap && img_close(lx->pagemap))
		ret = -EIO;
	if (lx->pages && img_close(lx->pages))
		ret = -EIO;
	free(lx->bounce);
	free(lx);
	return ret;
}

static int local_fini(struct xfer_target *t, int err)
{
	free(t);
	return 0;
}

static const struct xfer_ops local_ops = {
    .open = local_open,
    .add = local_add,
    .hole = local_hole,
    .close = local_close,
    .fini = local_fini,
};

struct xfer_target *xfer_target_local(int dirfd, uint32_t *next_pages_id)
{
	struct local_target *lt = xzalloc(sizeof(*lt));

	if (!lt)
		return NULL;
	lt->t.ops = &local_ops;
	lt->dirfd = dirfd;
	lt->next_pages_id = next_pages_id;
	return &lt->t;
}
