/* SPDX-License-Identifier: MIT */
#ifndef AMBER_VMA_H
#define AMBER_VMA_H

/*
 * vma_entry.status bits: CRIU's VMA_AREA_* / VMA_FILE_* / VMA_ANON_*
 * values, facts of the image format.
 */
#include <stdbool.h>
#include <stdint.h>

#define VMA_AREA_REGULAR (1 << 0)
#define VMA_AREA_STACK	 (1 << 1)
#define VMA_AREA_VSYSCALL (1 << 2)
#define VMA_AREA_VDSO	 (1 << 3)
#define VMA_AREA_HEAP	 (1 << 5)
#define VMA_FILE_PRIVATE (1 << 6)
#define VMA_FILE_SHARED	 (1 << 7)
#define VMA_ANON_SHARED	 (1 << 8)
#define VMA_ANON_PRIVATE (1 << 9)
#define VMA_AREA_SYSVIPC (1 << 10)
#define VMA_AREA_SOCKET	 (1 << 11)
#define VMA_AREA_VVAR	 (1 << 12)
#define VMA_AREA_AIORING (1 << 13)
#define VMA_AREA_MEMFD	 (1 << 14)
#define VMA_AREA_UNSUPP	 (1U << 31)

/* Which VMAs carry private (anonymous or COW) pages of their own. */
static inline bool vma_has_private_pages(unsigned int status)
{
	return (status & (VMA_ANON_PRIVATE | VMA_FILE_PRIVATE)) &&
	       !(status & (VMA_AREA_VDSO | VMA_AREA_VVAR));
}

/*
 * Which VMAs a lazy restore may leave to userfaultfd: private anonymous
 * memory only. Shared and file-backed memory (the page cache is not ours
 * to fill), locked memory (the kernel populates it at mmap), hugetlb
 * (whole huge pages, not worth the fault) and wipe-on-fork memory are
 * restored eagerly.
 */
#define VMA_MAP_LOCKED	0x2000
#define VMA_MAP_HUGETLB 0x40000
#define VMA_MADV_WIPEONFORK 18
static inline bool vma_can_be_lazy(unsigned int status, unsigned int flags, uint64_t madv)
{
	/* A child's copy of a wipe-on-fork VMA must read zeros, not our pages. */
	return (status & VMA_ANON_PRIVATE) && !(madv & (1ULL << VMA_MADV_WIPEONFORK)) &&
	       !(status & (VMA_FILE_PRIVATE | VMA_FILE_SHARED | VMA_ANON_SHARED | VMA_AREA_VDSO |
			   VMA_AREA_VVAR | VMA_AREA_SYSVIPC | VMA_AREA_AIORING | VMA_AREA_MEMFD)) &&
	       !(flags & (VMA_MAP_LOCKED | VMA_MAP_HUGETLB));
}

#endif
