/* SPDX-License-Identifier: MIT */
#ifndef AMBER_UAPI_H
#define AMBER_UAPI_H

/*
 * Kernel ABI that Debian 12's 6.1 headers lack or that libc does not
 * expose. Values are facts of the kernel's uapi.
 */
#include <stdbool.h>
#include <stdint.h>

#define NSIG_KERNEL 64

/* The kernel's struct sigaction on x86_64 (not libc's). */
struct kernel_sigaction {
	uint64_t handler;
	uint64_t flags;
	uint64_t restorer;
	uint64_t mask;
};

/* Linux 5.14: the buffer sizes' user locks, SOCK_SNDBUF_LOCK | SOCK_RCVBUF_LOCK */
#ifndef SO_BUF_LOCK
#define SO_BUF_LOCK 72
#endif

#ifndef SA_RESTORER
#define SA_RESTORER 0x04000000
#endif

#ifndef PTRACE_GET_RSEQ_CONFIGURATION
#define PTRACE_GET_RSEQ_CONFIGURATION 0x420f
#endif
struct rseq_config {
	uint64_t rseq_abi_pointer;
	uint32_t rseq_abi_size;
	uint32_t signature;
	uint32_t flags;
	uint32_t pad;
};

#ifndef RSEQ_FLAG_UNREGISTER
#define RSEQ_FLAG_UNREGISTER 1
#endif

#ifndef CLONE_CLEAR_SIGHAND
#define CLONE_CLEAR_SIGHAND 0x100000000ULL
#endif

/* clone3 (5.3+, set_tid 5.5+) */
struct clone_args_v2 {
	uint64_t flags;
	uint64_t pidfd;
	uint64_t child_tid;
	uint64_t parent_tid;
	uint64_t exit_signal;
	uint64_t stack;
	uint64_t stack_size;
	uint64_t tls;
	uint64_t set_tid;
	uint64_t set_tid_size;
	uint64_t cgroup;
};

#ifndef __NR_clone3
#define __NR_clone3 435
#endif
#ifndef __NR_pidfd_open
#define __NR_pidfd_open 434
#endif
#ifndef __NR_pidfd_getfd
#define __NR_pidfd_getfd 438
#endif
#ifndef __NR_close_range
#define __NR_close_range 436
#endif

/* PR_SET_MM_MAP (3.18+) */
#ifndef PR_SET_MM_MAP
#define PR_SET_MM_MAP 14
#endif
struct prctl_mm_map_v1 {
	uint64_t start_code;
	uint64_t end_code;
	uint64_t start_data;
	uint64_t end_data;
	uint64_t start_brk;
	uint64_t brk;
	uint64_t start_stack;
	uint64_t arg_start;
	uint64_t arg_end;
	uint64_t env_start;
	uint64_t env_end;
	uint64_t auxv; /* pointer */
	uint32_t auxv_size;
	uint32_t exe_fd;
};

/* userfaultfd write-protect async (6.7+) and PAGEMAP_SCAN (6.7+). */
#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC (1 << 15)
#endif
#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED (1 << 13)
#endif
#ifndef UFFD_FEATURE_WP_HUGETLBFS_SHMEM
#define UFFD_FEATURE_WP_HUGETLBFS_SHMEM (1 << 12)
#endif

#ifndef PAGEMAP_SCAN
#define PAGEMAP_SCAN 0xc0606610 /* _IOWR('f', 16, struct pm_scan_arg) */
#define PAGE_IS_WPALLOWED (1 << 0)
#define PAGE_IS_WRITTEN	  (1 << 1)
#define PAGE_IS_FILE	  (1 << 2)
#define PAGE_IS_PRESENT	  (1 << 3)
#define PAGE_IS_SWAPPED	  (1 << 4)
#define PAGE_IS_PFNZERO	  (1 << 5)
#define PAGE_IS_HUGE	  (1 << 6)
#define PAGE_IS_SOFT_DIRTY (1 << 7)
#define PM_SCAN_WP_MATCHING   (1 << 0)
#define PM_SCAN_CHECK_WPASYNC (1 << 1)
struct page_region {
	uint64_t start;
	uint64_t end;
	uint64_t categories;
};
struct pm_scan_arg {
	uint64_t size;
	uint64_t flags;
	uint64_t start;
	uint64_t end;
	uint64_t walk_end;
	uint64_t vec;
	uint64_t vec_len;
	uint64_t max_pages;
	uint64_t category_inverted;
	uint64_t category_mask;
	uint64_t category_anyof_mask;
	uint64_t return_mask;
};
#endif

/* /proc/PID/pagemap bits */
#define PME_PRESENT    (1ULL << 63)
#define PME_SWAP       (1ULL << 62)
#define PME_FILE       (1ULL << 61)
#define PME_EXCLUSIVE  (1ULL << 56)
#define PME_SOFT_DIRTY (1ULL << 55)
#define PME_PFN_MASK   ((1ULL << 55) - 1)

/*
 * A page with data of the task's own: swapped, or present and neither a
 * page-cache page nor the kernel's zero page (pfn @zero_pfn, 0 if unknown).
 */
static inline bool pme_wanted(uint64_t pme, uint64_t zero_pfn)
{
	if (pme & PME_SWAP)
		return true;
	if (!(pme & PME_PRESENT) || (pme & PME_FILE))
		return false;
	return !zero_pfn || (pme & PME_PFN_MASK) != zero_pfn;
}

#endif
