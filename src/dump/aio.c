// SPDX-License-Identifier: MIT
/*
 * AIO contexts (io_setup). A context is its ring: a shared mapping of an
 * anonymous "[aio]" file whose address is the context id. It is saved as
 * CRIU saves it: the ring VMA as private anonymous memory with
 * VMA_AREA_AIORING, all its pages (the header with head and tail, and
 * every io_event, read or not), and an aio_ring_entry in mm-<pid>.img
 * with the id, the ring's length and the nr_req that io_setup() needs to
 * make a ring of that length again. The restorer makes it again
 * (restore/restorer/aio.c).
 *
 * Requests still in flight cannot be seen from user space (the kernel
 * keeps them on the context, not in the ring): their completions would be
 * lost. A ring whose header is not the kernel's known layout is refused.
 */
#define LOG_PREFIX "aio: "
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>

#include "base/log.h"
#include "base/util.h"
#include "dump/dump.h"
#include "dump/memory.h"
#include "mem/vma.h"
#include "mm.pb-c.h"

#define AIO_RING_MAGIC 0xa10a10a1
#define AIO_RING_COMPAT_FEATURES 1
#define AIO_RING_INCOMPAT_FEATURES 0
#define AIO_EVENT_SIZE 32 /* struct io_event */

/* fs/aio.c's struct aio_ring, the page the kernel shares with the task. */
struct aio_ring_hdr {
	uint32_t id, nr, head, tail;
	uint32_t magic, compat_features, incompat_features, header_length;
};

bool dump_aio_is_ring(const char *path)
{
	return path && !strcmp(path, "/[aio] (deleted)");
}

void dump_aio_classify(VmaEntry *v)
{
	v->status = VMA_AREA_REGULAR | VMA_AREA_AIORING | VMA_ANON_PRIVATE;
	v->flags = MAP_PRIVATE | MAP_ANONYMOUS;
}

/*
 * io_setup(n) makes a ring of max(n, 4 * CPUs) * 2 + 2 events rounded up
 * to whole pages: (events - 2) / 2 asks for the same pages again.
 */
static uint32_t ring_nr_req(uint32_t nr_events)
{
	return (nr_events - 2) / 2;
}

static int dump_one_ring(struct dump_ctx *dc, pid_t pid, const VmaEntry *v, AioRingEntry **out)
{
	struct aio_ring_hdr h;
	uint64_t len = v->end - v->start;
	struct iovec l = { &h, sizeof(h) }, r = { (void *)(uintptr_t)v->start, sizeof(h) };
	AioRingEntry *re;

	if (process_vm_readv(pid, &l, 1, &r, 1, 0) != sizeof(h)) {
		pr_perror("%d: can't read the AIO ring at %#llx", pid, (unsigned long long)v->start);
		return -EIO;
	}
	if (h.magic != AIO_RING_MAGIC || h.compat_features != AIO_RING_COMPAT_FEATURES ||
	    h.incompat_features != AIO_RING_INCOMPAT_FEATURES || h.header_length != sizeof(h) ||
	    h.nr != (len - sizeof(h)) / AIO_EVENT_SIZE || h.nr < 4 || h.head >= h.nr ||
	    h.tail >= h.nr) {
		pr_err("process %d: the AIO ring at %#llx has a header amber does not know "
		       "(magic %#x, %u events, head %u, tail %u): not supported\n", pid,
		       (unsigned long long)v->start, h.magic, h.nr, h.head, h.tail);
		return -EOPNOTSUPP;
	}
	re = arena_new(&dc->arena, AioRingEntry);
	if (!re)
		return -ENOMEM;
	aio_ring_entry__init(re);
	re->id = v->start;
	re->ring_len = len;
	re->nr_req = ring_nr_req(h.nr);
	*out = re;
	pr_info("%d: AIO ring %#llx, %u events, %u unread\n", pid, (unsigned long long)v->start,
		h.nr, (h.tail + h.nr - h.head) % h.nr);
	return 0;
}

int dump_aio_rings(struct dump_ctx *dc, pid_t pid, MmEntry *mm)
{
	size_t n = 0;

	for (size_t i = 0; i < mm->n_vmas; i++)
		n += !!(mm->vmas[i]->status & VMA_AREA_AIORING);
	if (!n)
		return 0;
	mm->aios = arena_array(&dc->arena, AioRingEntry *, n);
	if (!mm->aios)
		return -ENOMEM;
	for (size_t i = 0; i < mm->n_vmas; i++) {
		int ret;

		if (!(mm->vmas[i]->status & VMA_AREA_AIORING))
			continue;
		ret = dump_one_ring(dc, pid, mm->vmas[i], &mm->aios[mm->n_aios]);
		if (ret)
			return ret;
		mm->n_aios++;
	}
	return 0;
}
