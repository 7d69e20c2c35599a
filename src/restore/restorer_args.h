/* SPDX-License-Identifier: MIT */
#ifndef AMBER_RESTORER_ARGS_H
#define AMBER_RESTORER_ARGS_H

/*
 * What a restored task hands the restorer blob. Built by the task itself
 * (with libc, in restore_task.c) inside the blob's own mapping, so every
 * pointer here is an absolute address in that mapping and survives the
 * blob unmapping everything else.
 *
 *   blob mapping:  [ code | rst_task_args | arrays ... | stacks | park ]
 *
 * Fixed-size types only: the blob is built without libc.
 */
#include <stdint.h>

#define RST_MAX_SPECIAL 4 /* [vvar], [vvar_vclock], [vdso], ... */
#define RST_NSIG 64
#define RST_NLIMITS 16
#define RST_STACK_SIZE (64 * 1024)
#define RST_AFFINITY_WORDS 16 /* 1024 CPUs */

struct rst_vma {
	uint64_t start, end, pgoff;
	uint32_t prot, flags, status;
	int32_t fd; /* -1 for anonymous private memory */
	uint64_t madv;
	uint32_t lazy; /* registered with the task's userfaultfd, not filled */
	uint32_t locked; /* mlock()ed once filled */
	uint64_t premap; /* laid out and filled before fork, waits here; 0: map it */
	uint64_t shmid;	 /* VMA_AREA_SYSVIPC: the segment attached here, */
	uint64_t shm_size; /* and its size, page aligned; */
	uint32_t shm_rdonly; /* attached SHM_RDONLY */
	uint32_t pad;
};

struct rst_run {
	uint64_t vaddr;
	uint64_t nr_pages;
	uint64_t off;  /* in the pages image */
	uint64_t csum;
	uint32_t csum_ver; /* AMBER_CSUM_V1, _V2, 0: none */
	int32_t fd;    /* pages image of the layer holding these pages */
};

/* Read from an older image but freed since: dropped after the fill. */
struct rst_zap {
	uint64_t start, len;
};

struct rst_special {
	uint64_t cur, target, len;
};

struct rst_creds {
	uint32_t uid, euid, suid, fsuid;
	uint32_t gid, egid, sgid, fsgid;
	uint32_t secbits, nr_groups;
	uint32_t keep_ids;    /* the ids are amber's own: set none (restore/creds.h) */
	uint32_t keep_groups; /* setgroups is denied in the tree's user namespace */
	uint32_t groups[64];
	uint64_t cap_inh, cap_prm, cap_eff, cap_bnd;
};

struct rst_seccomp_filter {
	uint32_t len;	/* instructions (struct sock_filter, 8 bytes each) */
	uint32_t flags; /* SECCOMP_FILTER_FLAG_* to install it with */
	uint64_t insns;
};

/* A thread's tids from its own pid namespace up to the tree root's: clone3's set_tid. */
#define RST_SET_TID_MAX 9

struct rst_thread {
	int32_t tid; /* in its own pid namespace */
	int32_t pdeath_sig;
	int32_t set_tid[RST_SET_TID_MAX]; /* innermost first */
	uint32_t nr_set_tid;
	uint64_t fs_base, gs_base;
	uint64_t clear_tid;
	uint64_t robust_head, robust_len;
	uint64_t rseq_ptr;
	uint32_t rseq_len, rseq_sig;
	uint64_t sigframe;    /* rt_sigframe to return through (pretcode slot) */
	uint64_t stack_top;   /* blob stack of this thread */
	uint64_t pending;     /* siginfo_t[nr_pending], 128 bytes each */
	uint32_t nr_pending;
	uint32_t pad;
	char comm[16];	      /* its name (PR_SET_NAME), "" to keep the leader's */
	struct rst_creds creds;
	int32_t has_sched;
	int32_t sched_policy, sched_prio, sched_nice;
	uint32_t affinity_len; /* bytes of affinity; 0: leave it */
	uint32_t pad2;
	uint64_t affinity[RST_AFFINITY_WORDS];
	int32_t no_new_privs;
	uint32_t seccomp_mode; /* 0, 1 strict, 2 filter */
	uint32_t nr_filters;
	uint32_t pad3;
	uint64_t filters; /* struct rst_seccomp_filter[nr_filters], oldest first */
};

/* A POSIX timer, created with its saved id and armed last (restorer/timers.c). */
struct rst_posix_timer {
	int32_t id, clock_id;
	int32_t signo, notify; /* sigev_notify, SIGEV_THREAD_ID included */
	int32_t tid, pad;      /* SIGEV_THREAD_ID: the thread it signals */
	uint64_t sival;
	int64_t interval[2], value[2]; /* sec, nsec */
};

/* A file lock taken again (restorer/file_locks.c), as files_lock says. */
enum { RST_LOCK_POSIX, RST_LOCK_FLOCK, RST_LOCK_OFD, RST_LOCK_LEASE };
enum { RST_LEASE_HELD, RST_LEASE_BREAK_TO_NONE, RST_LEASE_BREAK_TO_READ };
struct rst_file_lock {
	int32_t fd;
	uint32_t kind;
	uint32_t write; /* else read (shared) */
	uint32_t lease_break; /* RST_LEASE_*: a lease being broken, to what */
	int64_t start, len;
};

/* MEMBARRIER_CMD_REGISTER_{GLOBAL,PRIVATE}_EXPEDITED{,_SYNC_CORE,_RSEQ} */
#define RST_MEMBARRIER_REGISTER_CMDS ((1u << 2) | (1u << 4) | (1u << 6) | (1u << 8))

/* An AIO context, made again at its saved address (restorer/aio.c). */
struct rst_aio_ring {
	uint64_t addr, len; /* the ring VMA: addr is the context id */
	uint32_t nr_req, pad;
};

struct rst_sigaction {
	uint64_t handler, flags, restorer, mask;
};

struct rst_task_args {
	uint64_t blob_start, blob_len;
	int32_t pid;
	int32_t status_fd; /* failures are written here as text, then exit */
	int32_t pad0;
	int32_t svc_fd_base;
	uint64_t task_size;

	uint64_t vmas;	/* struct rst_vma[nr_vmas] */
	uint32_t nr_vmas;
	uint32_t nr_runs;
	uint64_t runs;	/* struct rst_run[nr_runs], oldest image first */
	uint64_t zaps;	/* struct rst_zap[nr_zaps] */
	uint32_t nr_zaps;
	uint32_t pad1;

	struct rst_special special[RST_MAX_SPECIAL];
	uint32_t nr_special;
	uint32_t nr_threads;
	uint64_t park;	/* where specials wait while they are moved */
	uint64_t threads; /* struct rst_thread[nr_threads], [0] is the leader */

	/* PR_SET_MM_MAP, with auxv pointing into the args area */
	uint64_t mm_map[12];
	uint32_t auxv_size;
	int32_t exe_fd;
	int32_t has_mm_map;
	int32_t dumpable;
	int32_t thp_disabled;
	uint32_t nr_sigactions;

	struct rst_sigaction sigactions[RST_NSIG + 1];
	uint64_t itimers[3][4]; /* interval sec, usec, value sec, usec */
	uint64_t rlimits[RST_NLIMITS][2];
	uint32_t nr_rlimits;
	uint32_t nr_shared_pending;
	uint64_t shared_pending; /* siginfo_t[] */

	/* rseq of the restoring (libc) thread, unregistered first */
	uint64_t cur_rseq_ptr;
	uint32_t cur_rseq_len, cur_rseq_sig;

	/* threads that are ready; the leader waits for all before creds */
	volatile uint32_t nr_ready;

	/*
	 * Lazy restore (lazy_proto.h): the blob creates a userfaultfd with
	 * uffd_features, registers the lazy VMAs and sends lazy_msg (an
	 * LZ_TASK prepared by amber) with the uffd to lazy_sock. In a user
	 * namespace of its own the task made it already (uffd, its features
	 * set by amber) and the blob only registers.
	 */
	int32_t lazy_sock; /* -1: eager restore */
	int32_t uffd;	   /* made before the blob, or -1 */
	uint32_t lazy_msg_len;
	uint64_t lazy_msg;
	uint64_t uffd_features;

	uint64_t posix_timers; /* struct rst_posix_timer[], by increasing id */
	uint32_t nr_posix_timers;
	uint32_t timer_ids_by_count; /* AMBER_FAULT=restore-timer-ids: as on old kernels */
	uint32_t fault_at; /* RST_FAULT_*: AMBER_FAULT=restore-mem-before and the like */
	uint32_t pad2;

	uint64_t file_locks; /* struct rst_file_lock[nr_file_locks] */
	uint32_t nr_file_locks;
	uint32_t pad3;

	/* The premap area (restore/premap.h): kept by the unmap, emptied by mremaps. */
	uint64_t premap_start, premap_len;

	uint64_t aio_rings; /* struct rst_aio_ring[nr_aio_rings] */
	uint32_t nr_aio_rings;
	uint32_t membarrier_cmds; /* MEMBARRIER_CMD_REGISTER_* to issue again, as a mask */

	/* A root other than amber's: chroot into root_fd, then enter cwd_fd; -1: none. */
	int32_t root_fd, cwd_fd;
};

/* Where the restorer fails on purpose (tests: docs/testing.md, fault injection). */
enum { RST_FAULT_NONE, RST_FAULT_MEM_BEFORE, RST_FAULT_MEM_AFTER, RST_FAULT_BLOB_END };

#endif
