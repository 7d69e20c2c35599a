/* SPDX-License-Identifier: MIT */
#ifndef AMBER_VMA_H
#define AMBER_VMA_H

/*
 * vma_entry.status bits: CRIU's VMA_AREA_* / VMA_FILE_* / VMA_ANON_*
 * values, facts of the image format.
 */
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

#endif
