// SPDX-License-Identifier: MIT
/*
 * Local page transfer: pagemap and pages images in a directory, exactly as
 * a dump writes them (xfer.h). The page server writes through it too.
 */
#define LOG_PREFIX "xfer: "
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "image/image.h"
#include "image/magic.h"
#include "base/log.h"
#include "mem/page_writer.h"
#include "pagemap.pb-c.h"
#include "base/util.h"
#include "mem/xfer_internal.h"

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
	struct page_writer *pw; /* writes to pages from its own thread */
};

static int local_open(struct xfer_target *t, enum xfer_kind kind, unsigned long id,
		      struct xfer **out)
{
	struct local_target *lt = (struct local_target *)t;
	struct local_xfer *lx = xzalloc(sizeof(*lx));
	PagemapHead ph = PAGEMAP_HEAD__INIT;
	int ret;

	if (!lx)
		return -ENOMEM;
	lx->x.t = t;
	ph.pages_id = ++*lt->next_pages_id;
	lx->pagemap =
	    img_open(lt->dirfd, kind == XFER_TASK ? IMG_PAGEMAP : IMG_SHMEM_PAGEMAP, true, id);
	lx->pages = lx->pagemap ? img_open(lt->dirfd, IMG_PAGES, true, ph.pages_id) : NULL;
	if (!lx->pages || img_write_msg(lx->pagemap, &ph.base)) {
		ret = errno ? -errno : -EIO;
		goto fail;
	}
	ret = pw_open(&lx->pw, lx->pages);
	if (ret)
		goto fail;
	*out = &lx->x;
	return 0;
fail:
	t->ops->close(&lx->x);
	return ret;
}

/*
 * One entry: @fill copies its data into the writer's buffers piece by
 * piece, and each piece is checksummed while it is still in the cache.
 * @off is where the entry starts in the run @fill reads from.
 */
static int put_entry(struct local_xfer *lx, uint64_t vaddr, size_t len, xfer_fill_fn *fill,
		     void *arg, uint64_t off)
{
	PagemapEntry pe = PAGEMAP_ENTRY__INIT;
	struct amber_csum_ctx cs;

	amber_csum_init(&cs, vaddr);
	for (size_t at = 0; at < len; at += PW_BUF_BYTES) {
		size_t n = min(len - at, (size_t)PW_BUF_BYTES);
		uint8_t *buf = pw_get(lx->pw);
		int ret;

		if (!buf)
			return -EIO; /* a write failed and said why */
		ret = fill(arg, buf, off + at, n);
		if (ret)
			return ret;
		amber_csum_add(&cs, buf, n);
		pw_put(lx->pw, n);
	}
	pe.vaddr = vaddr;
	pe.nr_pages = len / PAGE_SIZE;
	pe.has_flags = true;
	pe.flags = PE_PRESENT;
	/* version 2 only: a reader prefers it, so version 1 beside it would be dead weight */
	pe.has_amber_csum2 = true;
	pe.amber_csum2 = amber_csum2_end(&cs);
	return img_write_msg(lx->pagemap, &pe.base);
}

static int local_add_fill(struct xfer *x, uint64_t vaddr, uint64_t nr_pages, xfer_fill_fn *fill,
			  void *arg)
{
	struct local_xfer *lx = (struct local_xfer *)x;
	uint64_t total = nr_pages * PAGE_SIZE;
	int ret = 0;

	if (vaddr & (PAGE_SIZE - 1))
		return -EINVAL;
	/* One entry per ENTRY_BYTES, so each carries its own checksum. */
	for (uint64_t off = 0; off < total && !ret; off += ENTRY_BYTES)
		ret = put_entry(lx, vaddr + off, min(total - off, (uint64_t)ENTRY_BYTES), fill, arg,
				off);
	return ret;
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

struct iov_src {
	const struct iovec *iov;
	int iovcnt;
};

static int gather_fill(void *arg, void *buf, uint64_t off, size_t len)
{
	const struct iov_src *src = arg;

	gather(src->iov, src->iovcnt, off, buf, len);
	return 0;
}

static int local_add(struct xfer *x, uint64_t vaddr, const struct iovec *iov, int iovcnt)
{
	struct iov_src src = {iov, iovcnt};
	size_t total = 0;

	for (int i = 0; i < iovcnt; i++)
		total += iov[i].iov_len;
	if (total & (PAGE_SIZE - 1))
		return -EINVAL;
	return local_add_fill(x, vaddr, total / PAGE_SIZE, gather_fill, &src);
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
	/* The writer first: it writes to lx->pages. */
	int ret = pw_close(lx->pw);

	if (lx->pagemap && img_close(lx->pagemap))
		ret = -EIO;
	if (lx->pages && img_close(lx->pages))
		ret = -EIO;
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
    .add_fill = local_add_fill,
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
