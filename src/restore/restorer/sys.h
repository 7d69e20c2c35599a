/* SPDX-License-Identifier: MIT */
#ifndef AMBER_RESTORER_SYS_H
#define AMBER_RESTORER_SYS_H

/* Raw x86_64 syscalls for the restorer: no libc, no errno. */
#include <stdint.h>

static inline long sys6(long nr, long a1, long a2, long a3, long a4, long a5, long a6)
{
	long ret;
	register long r10 __asm__("r10") = a4;
	register long r8 __asm__("r8") = a5;
	register long r9 __asm__("r9") = a6;

	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(nr), "D"(a1), "S"(a2), "d"(a3), "r"(r10), "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
	return ret;
}

#define sys0(n)			   sys6(n, 0, 0, 0, 0, 0, 0)
#define sys1(n, a)		   sys6(n, (long)(a), 0, 0, 0, 0, 0)
#define sys2(n, a, b)		   sys6(n, (long)(a), (long)(b), 0, 0, 0, 0)
#define sys3(n, a, b, c)	   sys6(n, (long)(a), (long)(b), (long)(c), 0, 0, 0)
#define sys4(n, a, b, c, d)	   sys6(n, (long)(a), (long)(b), (long)(c), (long)(d), 0, 0)
#define sys5(n, a, b, c, d, e)	   sys6(n, (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), 0)

enum {
	NR_read = 0, NR_write = 1, NR_close = 3, NR_mmap = 9, NR_mprotect = 10,
	NR_munmap = 11, NR_rt_sigaction = 13, NR_rt_sigprocmask = 14, NR_rt_sigreturn = 15,
	NR_pread64 = 17, NR_mremap = 25, NR_madvise = 28, NR_getpid = 39, NR_exit = 60,
	NR_setitimer = 38, NR_setresuid = 117, NR_setresgid = 119, NR_setgroups = 116,
	NR_setfsuid = 122, NR_setfsgid = 123, NR_capset = 126,
	NR_rt_sigtimedwait = 128, NR_rt_sigqueueinfo = 129, NR_prctl = 157,
	NR_arch_prctl = 158, NR_gettid = 186, NR_futex = 202, NR_set_tid_address = 218,
	NR_exit_group = 231, NR_tgkill = 234, NR_set_robust_list = 273,
	NR_rt_tgsigqueueinfo = 297, NR_prlimit64 = 302, NR_rseq = 334, NR_clone3 = 435,
	NR_close_range = 436, NR_ioctl = 16, NR_fcntl = 72, NR_flock = 73, NR_sendmsg = 46, NR_userfaultfd = 323,
	NR_mlock = 149, NR_shmat = 30, NR_shmdt = 67, NR_setpriority = 141, NR_sched_setscheduler = 144,
	NR_sched_setaffinity = 203, NR_seccomp = 317, NR_timer_create = 222, NR_timer_settime = 223, NR_timer_delete = 226,
	NR_io_setup = 206, NR_io_submit = 209, NR_memfd_create = 319, NR_membarrier = 324,
	NR_fchdir = 81, NR_chroot = 161, NR_openat = 257,
};

#endif
