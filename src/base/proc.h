/* SPDX-License-Identifier: MIT */
#ifndef AMBER_PROC_H
#define AMBER_PROC_H

/*
 * Parsers for /proc/PID files. Each fills a plain struct; none keeps
 * state between calls.
 */
#include <sys/resource.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

struct proc_stat {
	char state;
	char comm[32];
	pid_t ppid, pgid, sid;
	unsigned int flags;
	uint64_t start_code, end_code, start_stack;
	uint64_t start_data, end_data, start_brk;
	uint64_t arg_start, arg_end, env_start, env_end;
	int exit_code;
	int nr_threads;
};

struct proc_status {
	uint32_t uid[4], gid[4]; /* real, effective, saved, fs */
	uint32_t groups[64];
	int nr_groups;
	uint64_t cap_inh, cap_prm, cap_eff, cap_bnd, cap_amb;
	int no_new_privs;
	int seccomp;
	unsigned int umask;
	uint64_t sig_blk, sig_ign, sig_cgt;
};

/* One line of /proc/PID/smaps with the VmFlags we care about. */
struct proc_vma {
	uint64_t start, end, pgoff;
	unsigned int prot;    /* PROT_* */
	bool shared;	      /* 's' in perms */
	uint32_t dev_major, dev_minor;
	uint64_t ino;
	char *path;	      /* NULL for anonymous; "[heap]", "/dev/zero (deleted)", ... */
	unsigned long vmflags; /* VMF_* below */
	unsigned long page_kb; /* KernelPageSize: 4, or a huge page size for hugetlb */
};

enum {
	VMF_GROWSDOWN = 1 << 0, /* gd */
	VMF_DONTCOPY = 1 << 1,	/* dc: MADV_DONTFORK */
	VMF_DONTDUMP = 1 << 2,	/* dd */
	VMF_HUGEPAGE = 1 << 3,	/* hg */
	VMF_NOHUGEPAGE = 1 << 4, /* nh */
	VMF_MERGEABLE = 1 << 5, /* mg */
	VMF_WIPEONFORK = 1 << 6, /* wf */
	VMF_LOCKED = 1 << 7,	/* lo */
	VMF_IO = 1 << 8,	/* io */
	VMF_PFNMAP = 1 << 9,	/* pf */
	VMF_MAYSHARE = 1 << 10, /* ms */
	VMF_SEQ_READ = 1 << 11, /* sr */
	VMF_RAND_READ = 1 << 12, /* rr */
	VMF_HUGETLB = 1 << 13,	/* ht */
	VMF_MAYWRITE = 1 << 14, /* mw: may be made writable (a SysV attach's access) */
};

int proc_parse_stat(pid_t pid, struct proc_stat *st);
int proc_parse_status(pid_t pid, pid_t tid, struct proc_status *st);
/* Gone, a zombie or being released: nothing left of it to freeze or read. */
bool proc_task_exited(pid_t pid);
/* Whether amber itself holds capability @cap (CAP_*) in its effective set. */
bool proc_self_has_cap(int cap);
/* Returns the number of VMAs in *vmas (malloc'ed; free with proc_vmas_free) or -errno. */
int proc_parse_smaps(pid_t pid, struct proc_vma **vmas);
void proc_vmas_free(struct proc_vma *vmas, int nr);
/*
 * Resource limits from /proc/PID/limits, readable for any task (prlimit()
 * on a task of another uid needs CAP_SYS_RESOURCE). Fills lim[0..n) in
 * RLIMIT_* order; returns n or -errno (-EBADMSG: a line it can't read).
 */
int proc_parse_limits(pid_t pid, struct rlimit *lim, int max);
/* Lists /proc/PID/task into a malloc'ed array; returns the count or -errno. */
int proc_list_threads(pid_t pid, pid_t **tids);
/* Children of every thread of PID; returns the count or -errno. */
int proc_list_children(pid_t pid, pid_t **kids);

/*
 * /proc/PID/timens_offsets (0: self): the clock offsets of the time
 * namespace PID's children are born in (its own, unless it unshared one
 * since), tv_nsec in [0, 1e9). 0 or -errno (-EBADMSG: unreadable).
 */
struct proc_timens_offsets {
	struct timespec monotonic, boottime;
};
int proc_parse_timens_offsets(pid_t pid, struct proc_timens_offsets *o);

/* Where amber sees the cgroup v2 hierarchy mounted: @out is "" if nowhere. */
int proc_unified_mount(char *out, size_t len);

#endif
