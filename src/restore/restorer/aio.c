// SPDX-License-Identifier: MIT
/* AIO rings in the restorer (aio.h). Raw syscalls only. */
#include "aio.h"
#include "sys.h"

#define EAGAIN 11
#define EINVAL 22
#define EIO 5
#define MREMAP_MAYMOVE 1
#define MREMAP_FIXED 2
#define IOCB_CMD_PREAD 0
#define BATCH 32 /* requests per io_submit: their iocbs live on the blob stack */

/* The kernel's struct aio_ring header (fs/aio.c), then io_event[nr]. */
struct aio_ring_hdr {
	uint32_t id, nr, head, tail;
	uint32_t magic, compat_features, incompat_features, header_length;
};

struct k_iocb {
	uint64_t data;
	uint32_t key, rw_flags;
	uint16_t opcode;
	int16_t reqprio;
	uint32_t fildes;
	uint64_t buf, nbytes;
	int64_t offset;
	uint64_t reserved2;
	uint32_t flags, resfd;
};

static void copy_bytes(void *dst, const void *src, uint64_t len)
{
	char *d = dst;
	const char *s = src;

	while (len--)
		*d++ = *s++;
}

/*
 * Completes @n reads of nothing on @ctx, moving the kernel's tail by @n;
 * with @consume, reads them too (head = tail, as libaio reads a ring).
 */
static long complete_nothing(uint64_t ctx, int memfd, uint32_t n, int consume)
{
	volatile struct aio_ring_hdr *ring = (struct aio_ring_hdr *)ctx;
	struct k_iocb cbs[BATCH];
	struct k_iocb *ptrs[BATCH];
	char buf[1];

	while (n) {
		uint32_t b = n < BATCH ? n : BATCH, tail = ring->tail;
		long ret;

		for (uint32_t i = 0; i < b; i++) {
			cbs[i] = (struct k_iocb){ .opcode = IOCB_CMD_PREAD, .fildes = memfd,
						  .buf = (uint64_t)buf, .nbytes = 1 };
			ptrs[i] = &cbs[i];
		}
		ret = sys3(NR_io_submit, ctx, b, ptrs);
		if (ret != (long)b)
			return ret < 0 ? ret : -EAGAIN;
		/* A read of an empty memfd completes inside io_submit. */
		if (ring->tail != (tail + b) % ring->nr)
			return -EIO;
		if (consume)
			ring->head = ring->tail;
		n -= b;
	}
	return 0;
}

static long restore_ring(const struct rst_aio_ring *r, const char **what)
{
	const struct aio_ring_hdr *saved = (const struct aio_ring_hdr *)r->addr;
	struct aio_ring_hdr *ring;
	uint32_t head = saved->head, tail = saved->tail, nr = saved->nr;
	uint64_t ctx = 0;
	long ret;

	*what = "io_setup of an AIO ring";
	ret = sys2(NR_io_setup, r->nr_req, &ctx);
	if (ret)
		return ret;
	ring = (struct aio_ring_hdr *)ctx;
	*what = "an AIO ring of the saved size (a kernel that sizes rings otherwise?)";
	if (ring->nr != nr || head >= nr || tail >= nr)
		return -EINVAL;
	if (head || tail) {
		int memfd = sys2(NR_memfd_create, "amber-aio", 0);

		*what = "memfd_create for an AIO ring";
		if (memfd < 0)
			return memfd;
		*what = "completing requests to bring an AIO ring to its saved place";
		ret = complete_nothing(ctx, memfd, head, 1);
		if (!ret)
			ret = complete_nothing(ctx, memfd, (tail + nr - head) % nr, 0);
		sys1(NR_close, memfd);
		if (ret)
			return ret;
	}
	/* The kernel's own id stays: io_getevents finds the context by it. */
	copy_bytes(ring + 1, saved + 1, r->len - sizeof(*ring));
	*what = "mremap of an AIO ring to its saved address";
	ret = sys5(NR_mremap, ctx, r->len, r->len, MREMAP_MAYMOVE | MREMAP_FIXED, r->addr);
	return ret == (long)r->addr ? 0 : (ret < 0 ? ret : -EINVAL);
}

long rst_restore_aio_rings(struct rst_task_args *a, const char **what, uint64_t *at)
{
	const struct rst_aio_ring *r = (const struct rst_aio_ring *)a->aio_rings;

	for (uint32_t i = 0; i < a->nr_aio_rings; i++) {
		long ret = restore_ring(&r[i], what);

		if (ret) {
			*at = r[i].addr;
			return ret;
		}
	}
	return 0;
}
