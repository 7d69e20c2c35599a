// SPDX-License-Identifier: MIT
/*
 * AIO rings at load (the restorer makes them: restorer/aio.c): each
 * aio_ring_entry of mm-<pid>.img names a VMA_AREA_AIORING VMA of its
 * length, and each such VMA has one, before any task exists. amber
 * writes the VMA as private anonymous memory; CRIU 4.2 as MAP_SHARED
 * with no other status bit. Either is laid out as private anonymous
 * memory holding the saved ring until the restorer replaces it.
 */
#define LOG_PREFIX "restore: "
#include <errno.h>
#include <sys/mman.h>

#include "base/log.h"
#include "base/util.h"
#include "mem/vma.h"
#include "restore/restore.h"

#define AIO_HDR_SIZE 32
#define AIO_EVENT_SIZE 32

static const VmaEntry *ring_vma(const MmEntry *mm, uint64_t id)
{
	for (size_t i = 0; i < mm->n_vmas; i++)
		if (mm->vmas[i]->start == id)
			return mm->vmas[i];
	return NULL;
}

static bool ring_ok(const MmEntry *mm, const AioRingEntry *re)
{
	const VmaEntry *v = ring_vma(mm, re->id);
	uint64_t nr = (re->ring_len - AIO_HDR_SIZE) / AIO_EVENT_SIZE;

	return v && (v->status & VMA_AREA_AIORING) &&
	       !(v->status & (VMA_FILE_PRIVATE | VMA_FILE_SHARED | VMA_ANON_SHARED |
			      VMA_AREA_SOCKET | VMA_AREA_SYSVIPC | VMA_AREA_MEMFD)) &&
	       v->end - v->start == re->ring_len && !(re->ring_len & (PAGE_SIZE - 1)) &&
	       re->ring_len >= PAGE_SIZE && re->nr_req && 2ULL * re->nr_req + 2 <= nr;
}

int rst_check_aio_rings(struct rst_task *t)
{
	MmEntry *mm = t->mm;
	size_t nr_vmas = 0;

	for (size_t i = 0; i < mm->n_vmas; i++)
		nr_vmas += !!(mm->vmas[i]->status & VMA_AREA_AIORING);
	for (size_t i = 0; i < mm->n_aios; i++) {
		if (!ring_ok(mm, mm->aios[i])) {
			pr_err("mm-%d.img: AIO ring %#llx does not match its VMA\n", t->pid,
			       (unsigned long long)mm->aios[i]->id);
			return -EINVAL;
		}
		for (size_t j = 0; j < i; j++)
			if (mm->aios[j]->id == mm->aios[i]->id) {
				pr_err("mm-%d.img: AIO ring %#llx saved twice\n", t->pid,
				       (unsigned long long)mm->aios[i]->id);
				return -EINVAL;
			}
	}
	if (nr_vmas != mm->n_aios) {
		pr_err("mm-%d.img: %zu AIO ring VMAs for %zu AIO rings\n", t->pid, nr_vmas,
		       mm->n_aios);
		return -EINVAL;
	}
	for (size_t i = 0; i < mm->n_vmas; i++) {
		VmaEntry *v = mm->vmas[i];

		if (!(v->status & VMA_AREA_AIORING))
			continue;
		v->status = VMA_AREA_REGULAR | VMA_AREA_AIORING | VMA_ANON_PRIVATE;
		v->flags = MAP_PRIVATE | MAP_ANONYMOUS;
	}
	return 0;
}
