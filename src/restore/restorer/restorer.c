// SPDX-License-Identifier: MIT
/*
 * The restorer blob. It runs in each restored task after the task has
 * set up everything that needs libc, from a mapping that collides with
 * no saved VMA. It unmaps the rest of the restoring process, maps the
 * saved VMAs and fills them from the pages image, restores the per-task
 * and per-thread kernel state, creates the other threads, and finally
 * each thread stops (so amber can catch it) and rt_sigreturns into its
 * saved registers.
 *
 * Raw syscalls only; every failure writes a line to status_fd and exits
 * the whole task, which amber sees and turns into a failed restore.
 */
#include <stddef.h>
#include <stdint.h>

#include "base/csum.h"
#include "restore/restorer_args.h"
#include "lazy.h"
#include "sys.h"
#include "aio.h"
#include "file_locks.h"
#include "timers.h"

#define PROT_READ  1
#define PROT_WRITE 2
#define PROT_EXEC  4
#define MAP_SHARED 1
#define MAP_PRIVATE 2
#define MAP_FIXED 0x10
#define MAP_ANONYMOUS 0x20
#define MAP_GROWSDOWN 0x100
#define MREMAP_MAYMOVE 1
#define MREMAP_FIXED 2
#define PR_SET_MM 35
#define PR_SET_MM_MAP 14
#define PR_SET_DUMPABLE 4
#define PR_SET_THP_DISABLE 41
#define PR_SET_PDEATHSIG 1
#define PR_SET_NAME 15
#define PR_SET_SECUREBITS 28
#define PR_CAPBSET_DROP 24
#define PR_SET_KEEPCAPS 8
#define PR_SET_NO_NEW_PRIVS 38
#define PR_SET_SECCOMP 22
#define SECCOMP_MODE_STRICT 1
#define SECCOMP_SET_MODE_FILTER 1
#define ARCH_SET_GS 0x1001
#define ARCH_SET_FS 0x1002
#define SIGSTOP 19
#define SIGCHLD 17
#define PAGE 4096UL
#define VMA_AREA_VDSO (1 << 3)
#define VMA_AREA_VVAR (1 << 12)
#define VMA_AREA_AIORING (1 << 13)
#define VMA_AREA_SYSVIPC (1 << 10)

#define CLONE_VM 0x100
#define CLONE_FS 0x200
#define CLONE_FILES 0x400
#define CLONE_SIGHAND 0x800
#define CLONE_THREAD 0x10000
#define CLONE_SYSVSEM 0x40000

static void write_str(int fd, const char *s)
{
	size_t n = 0;

	while (s[n])
		n++;
	sys3(NR_write, fd, s, n);
}

static void fmt_num(char *buf, long v)
{
	char tmp[24];
	int i = 0, j = 0;
	unsigned long u = v < 0 ? -v : v;

	do {
		tmp[i++] = '0' + u % 10;
		u /= 10;
	} while (u);
	if (v < 0)
		buf[j++] = '-';
	while (i)
		buf[j++] = tmp[--i];
	buf[j] = 0;
}

/* Reports "restorer: <pid>: <what> failed: <ret>" and kills the task. */
static void __attribute__((noreturn)) fail_at(struct rst_task_args *a, const char *what, long ret,
					      uint64_t addr)
{
	char num[24];

	if (a->status_fd < 0)
		sys1(NR_exit_group, 42);
	write_str(a->status_fd, "restorer: ");
	fmt_num(num, a->pid);
	write_str(a->status_fd, num);
	write_str(a->status_fd, ": ");
	write_str(a->status_fd, what);
	write_str(a->status_fd, " failed: ");
	fmt_num(num, ret);
	write_str(a->status_fd, num);
	if (addr) {
		write_str(a->status_fd, " at ");
		fmt_num(num, addr);
		write_str(a->status_fd, num);
	}
	write_str(a->status_fd, "\n");
	sys1(NR_exit_group, 42);
	__builtin_unreachable();
}

#define fail(a, what, ret) fail_at(a, what, ret, 0)

/* Unmaps everything but the blob, the premap area and the current vdso/vvar. */
static void unmap_old(struct rst_task_args *a)
{
	uint64_t keep[RST_MAX_SPECIAL + 2][2];
	int n = 0;
	uint64_t cur = 0;

	keep[n][0] = a->blob_start;
	keep[n++][1] = a->blob_start + a->blob_len;
	if (a->premap_len) {
		keep[n][0] = a->premap_start;
		keep[n++][1] = a->premap_start + a->premap_len;
	}
	for (uint32_t i = 0; i < a->nr_special; i++) {
		keep[n][0] = a->special[i].cur;
		keep[n++][1] = a->special[i].cur + a->special[i].len;
	}
	/* sort by start (n is tiny) */
	for (int i = 0; i < n; i++)
		for (int j = i + 1; j < n; j++)
			if (keep[j][0] < keep[i][0]) {
				uint64_t s = keep[i][0], e = keep[i][1];

				keep[i][0] = keep[j][0], keep[i][1] = keep[j][1];
				keep[j][0] = s, keep[j][1] = e;
			}
	for (int i = 0; i <= n; i++) {
		uint64_t end = i < n ? keep[i][0] : a->task_size;

		if (end > cur) {
			long ret = sys2(NR_munmap, cur, end - cur);

			if (ret)
				fail(a, "munmap of the old address space", ret);
		}
		if (i < n)
			cur = keep[i][1];
	}
}

/* Into the blob's park first: a premapped VMA may be bound for their place. */
static void park_specials(struct rst_task_args *a)
{
	uint64_t off = 0;

	for (uint32_t i = 0; i < a->nr_special; i++) {
		struct rst_special *s = &a->special[i];
		long ret = sys5(NR_mremap, s->cur, s->len, s->len, MREMAP_MAYMOVE | MREMAP_FIXED,
				a->park + off);

		if (ret != (long)(a->park + off))
			fail(a, "mremap of vdso/vvar to the park", ret);
		s->cur = a->park + off;
		off += s->len;
	}
}

static void move_premapped_one(struct rst_task_args *a, struct rst_vma *v)
{
	uint64_t len = v->end - v->start;
	long ret = sys5(NR_mremap, v->premap, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, v->start);

	if (ret != (long)v->start)
		fail_at(a, "mremap of a premapped VMA to its place", ret, v->start);
}

/* In any order: the premap area lies apart from every saved VMA (premap.h). */
static void move_premapped(struct rst_task_args *a)
{
	struct rst_vma *v = (struct rst_vma *)a->vmas;

	for (uint32_t i = 0; i < a->nr_vmas; i++)
		if (v[i].premap)
			move_premapped_one(a, &v[i]);
}

/* Last, when the premap area is empty: a saved vdso may lie where it was. */
static void move_specials(struct rst_task_args *a)
{
	for (uint32_t i = 0; i < a->nr_special; i++) {
		struct rst_special *s = &a->special[i];
		long ret = sys5(NR_mremap, s->cur, s->len, s->len, MREMAP_MAYMOVE | MREMAP_FIXED,
				s->target);

		if (ret != (long)s->target)
			fail(a, "mremap of vdso/vvar to its saved place", ret);
	}
}

#define SHM_RDONLY 010000
#define SHM_EXEC 0100000

/*
 * A SysV attach, in the task's (new) IPC namespace where the segment has
 * its saved id. A whole attach goes straight to its place; a piece (cut
 * by munmap or mprotect: pgoff into the segment) is moved there out of a
 * whole one the kernel places, and the rest dropped. Final protections
 * come with the others (finish_vmas).
 */
static void attach_shm(struct rst_task_args *a, struct rst_vma *v)
{
	long flags = (v->shm_rdonly ? SHM_RDONLY : 0) | (v->prot & PROT_EXEC ? SHM_EXEC : 0);
	uint64_t len = v->end - v->start;
	long at, ret;

	if (!v->pgoff && len == v->shm_size) {
		ret = sys3(NR_shmat, v->shmid, v->start, flags);
		if (ret != (long)v->start)
			fail_at(a, "shmat of a SysV segment at its place", ret, v->start);
		return;
	}
	at = sys3(NR_shmat, v->shmid, 0, flags);
	if (at < 0 && at > -4096)
		fail_at(a, "shmat of a SysV segment", at, v->start);
	ret = sys5(NR_mremap, at + v->pgoff, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, v->start);
	if (ret != (long)v->start)
		fail_at(a, "mremap of a piece of a SysV segment to its place", ret, v->start);
	/* What is left of the whole attach: the part before and after the piece. */
	if (v->pgoff)
		sys2(NR_munmap, at, v->pgoff);
	if (v->pgoff + len < v->shm_size)
		sys2(NR_munmap, at + v->pgoff + len, v->shm_size - v->pgoff - len);
}

static void map_vmas(struct rst_task_args *a)
{
	struct rst_vma *v = (struct rst_vma *)a->vmas;

	for (uint32_t i = 0; i < a->nr_vmas; i++, v++) {
		long ret;
		uint32_t flags = v->flags | MAP_FIXED;

		if ((v->status & (VMA_AREA_VDSO | VMA_AREA_VVAR)) || v->premap)
			continue;
		if (v->status & VMA_AREA_SYSVIPC) {
			attach_shm(a, v);
			continue;
		}
		if (v->fd < 0)
			flags |= MAP_ANONYMOUS;
		/* Writable until the pages are in; final protections come later. */
		/* Shared mappings get no pages from the image: keep their own prot,
		 * which a read-only fd allows. */
		ret = sys6(NR_mmap, v->start, v->end - v->start,
			   (v->flags & MAP_SHARED) ? v->prot : v->prot | PROT_WRITE | PROT_READ,
			   flags, v->fd, v->fd < 0 ? 0 : v->pgoff);
		if (ret != (long)v->start)
			fail_at(a, "mmap of a saved VMA", ret, v->start);
	}
}

/*
 * Pages are read straight into place in pieces small enough to stay in
 * the cache, and each piece is summed right after its read: summing a
 * whole 2 MiB run after reading it would fetch it from memory again.
 */
#define FILL_PIECE (256 * 1024UL)

static void fill_piece(struct rst_task_args *a, struct rst_run *r, uint64_t at, uint64_t len)
{
	uint64_t done = 0;

	while (done < len) {
		long n = sys4(NR_pread64, r->fd, r->vaddr + at + done, len - done,
			      r->off + at + done);

		if (n <= 0)
			fail_at(a, "read of the pages image", n, r->vaddr + at + done);
		done += n;
	}
}

static void fill_pages(struct rst_task_args *a)
{
	struct rst_run *r = (struct rst_run *)a->runs;

	for (uint32_t i = 0; i < a->nr_runs; i++, r++) {
		uint64_t len = r->nr_pages * PAGE;
		struct amber_csum_ctx cs;

		amber_csum_init(&cs, r->vaddr);
		for (uint64_t at = 0; at < len; at += FILL_PIECE) {
			uint64_t n = len - at < FILL_PIECE ? len - at : FILL_PIECE;

			fill_piece(a, r, at, n);
			amber_csum_add(&cs, (void *)(r->vaddr + at), n);
		}
		if (r->csum_ver && amber_csum_end_ver(&cs, r->csum_ver) != r->csum)
			fail_at(a, "checksum of the pages image (corrupt image)", -5, r->vaddr);
	}
}

/* Pages an older image had that are gone now: back to zero (or the file). */
static void zap_pages(struct rst_task_args *a)
{
	struct rst_zap *z = (struct rst_zap *)a->zaps;

	for (uint32_t i = 0; i < a->nr_zaps; i++, z++) {
		long ret = sys3(NR_madvise, z->start, z->len, 4 /* MADV_DONTNEED */);

		if (ret)
			fail_at(a, "madvise(DONTNEED) of pages freed since a parent image", ret,
				z->start);
	}
}

static void finish_vmas(struct rst_task_args *a)
{
	struct rst_vma *v = (struct rst_vma *)a->vmas;

	for (uint32_t i = 0; i < a->nr_vmas; i++, v++) {
		long ret;

		/* An AIO ring is the kernel's mapping now, with its own prot. */
		if (v->status & (VMA_AREA_VDSO | VMA_AREA_VVAR | VMA_AREA_AIORING))
			continue;
		ret = sys3(NR_mprotect, v->start, v->end - v->start, v->prot);
		if (ret)
			fail_at(a, "mprotect of a saved VMA", ret, v->start);
		for (int adv = 0; adv < 64; adv++) {
			if (!(v->madv & (1ULL << adv)))
				continue;
			ret = sys3(NR_madvise, v->start, v->end - v->start, adv);
			if (ret)
				fail(a, "madvise of a saved VMA", ret);
		}
		/* Last, on the filled pages: locking first would fault them all in empty. */
		if (v->locked) {
			ret = sys2(NR_mlock, v->start, v->end - v->start);
			if (ret)
				fail_at(a, "mlock of a locked VMA", ret, v->start);
		}
		if (v->fd >= 0)
			sys1(NR_close, v->fd);
	}
}

/* The saved root, now that nothing is opened by amber's paths any more. */
static void restore_root(struct rst_task_args *a)
{
	long ret;

	if (a->root_fd < 0)
		return;
	ret = sys1(NR_fchdir, a->root_fd);
	if (!ret)
		ret = sys1(NR_chroot, ".");
	if (!ret)
		ret = sys1(NR_fchdir, a->cwd_fd);
	if (ret)
		fail(a, "chroot into the saved root", ret);
	sys1(NR_close, a->root_fd);
	sys1(NR_close, a->cwd_fd);
}

static void restore_task_state(struct rst_task_args *a)
{
	long ret;

	if (a->has_mm_map) {
		ret = sys5(NR_prctl, PR_SET_MM, PR_SET_MM_MAP, a->mm_map, sizeof(a->mm_map) + 8, 0);
		if (ret)
			fail(a, "prctl(PR_SET_MM_MAP)", ret);
	}
	if (a->exe_fd >= 0)
		sys1(NR_close, a->exe_fd);
	restore_root(a);
	sys2(NR_prctl, PR_SET_THP_DISABLE, a->thp_disabled);
	for (uint32_t sig = 1; sig <= a->nr_sigactions; sig++) {
		if (sig == 9 || sig == SIGSTOP)
			continue;
		ret = sys4(NR_rt_sigaction, sig, &a->sigactions[sig], 0, 8);
		if (ret)
			fail(a, "rt_sigaction", ret);
	}
	for (int w = 0; w < 3; w++) {
		ret = sys3(NR_setitimer, w, a->itimers[w], 0);
		if (ret)
			fail(a, "setitimer", ret);
	}
	for (uint32_t r = 0; r < a->nr_rlimits; r++) {
		ret = sys4(NR_prlimit64, 0, r, a->rlimits[r], 0);
		if (ret)
			fail(a, "prlimit64", ret);
	}
	/* The mm is the final one now: its membarrier registrations, again. */
	for (int bit = 0; bit < 32; bit++) {
		if (!(a->membarrier_cmds & (1u << bit)))
			continue;
		ret = sys3(NR_membarrier, 1u << bit, 0, 0);
		if (ret)
			fail(a, "membarrier registration (a kernel without it?)", ret);
	}
}

/* SIGCHLDs from zombie helpers that exited during the restore are not the task's. */
static void drop_restore_sigchld(void)
{
	uint64_t set = 1ULL << (SIGCHLD - 1);
	uint64_t ts[2] = { 0, 0 };
	char info[128];

	while (sys4(NR_rt_sigtimedwait, &set, info, ts, 8) == SIGCHLD)
		;
}

static void restore_creds(struct rst_task_args *a, struct rst_creds *c)
{
	struct {
		uint32_t version;
		int32_t pid;
	} hdr = { 0x20080522, 0 };
	uint32_t data[6];
	long ret;

	for (int cap = 0; cap < 64; cap++)
		if (!(c->cap_bnd & (1ULL << cap)))
			sys2(NR_prctl, PR_CAPBSET_DROP, cap);
	/* Even setting the same ids needs CAP_SETUID/CAP_SETGID: skip our own. */
	if (!c->keep_ids) {
		ret = c->keep_groups ? 0 : sys2(NR_setgroups, c->nr_groups, c->groups);
		if (ret)
			fail(a, "setgroups", ret);
		sys2(NR_prctl, PR_SET_KEEPCAPS, 1);
		ret = sys3(NR_setresgid, c->gid, c->egid, c->sgid);
		if (!ret)
			ret = sys3(NR_setresuid, c->uid, c->euid, c->suid);
		if (ret)
			fail(a, "setresuid/gid", ret);
		sys1(NR_setfsgid, c->fsgid);
		sys1(NR_setfsuid, c->fsuid);
	}
	data[0] = c->cap_eff, data[1] = c->cap_prm, data[2] = c->cap_inh;
	data[3] = c->cap_eff >> 32, data[4] = c->cap_prm >> 32, data[5] = c->cap_inh >> 32;
	ret = sys2(NR_capset, &hdr, data);
	if (ret)
		fail(a, "capset", ret);
	sys2(NR_prctl, PR_SET_SECUREBITS, c->secbits);
}

/* This thread's policy, RT priority, nice and CPUs; before the creds (they may need root). */
static void restore_sched(struct rst_task_args *a, struct rst_thread *t)
{
	long ret;

	if (t->has_sched) {
		int32_t prio = t->sched_prio;

		ret = sys3(NR_setpriority, 0 /* PRIO_PROCESS */, 0, t->sched_nice);
		if (!ret)
			ret = sys3(NR_sched_setscheduler, 0, t->sched_policy, &prio);
		if (ret)
			fail(a, "restoring the scheduling policy", ret);
	}
	if (t->affinity_len) {
		ret = sys3(NR_sched_setaffinity, 0, t->affinity_len, t->affinity);
		if (ret)
			fail(a, "sched_setaffinity (a saved CPU missing here?)", ret);
	}
}

/*
 * no_new_privs, then the filters oldest first (or strict mode), while we
 * are still root: without no_new_privs installing a filter needs
 * CAP_SYS_ADMIN. amber traces us with PTRACE_O_SUSPEND_SECCOMP, so what
 * is installed here cannot block the rest of the restore.
 */
static void restore_seccomp(struct rst_task_args *a, struct rst_thread *t)
{
	struct rst_seccomp_filter *f = (struct rst_seccomp_filter *)t->filters;
	long ret;

	if (t->no_new_privs) {
		ret = sys5(NR_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
		if (ret)
			fail(a, "prctl(PR_SET_NO_NEW_PRIVS)", ret);
	}
	for (uint32_t i = 0; i < t->nr_filters; i++) {
		struct {
			uint16_t len;
			uint16_t pad[3];
			uint64_t filter;
		} prog = { .len = f[i].len, .filter = f[i].insns };

		ret = sys3(NR_seccomp, SECCOMP_SET_MODE_FILTER, f[i].flags, &prog);
		if (ret)
			fail(a, "installing a seccomp filter", ret);
	}
	if (t->seccomp_mode == SECCOMP_MODE_STRICT) {
		ret = sys2(NR_prctl, PR_SET_SECCOMP, SECCOMP_MODE_STRICT);
		if (ret)
			fail(a, "prctl(PR_SET_SECCOMP, strict)", ret);
	}
}

static void __attribute__((noreturn)) sigreturn_to(uint64_t frame)
{
	/* rt_sigreturn reads the frame at rsp - 8 (after the popped pretcode). */
	__asm__ volatile("mov %0, %%rsp\n\t"
			 "mov $15, %%eax\n\t"
			 "syscall\n\t"
			 :
			 : "r"(frame + 8)
			 : "memory");
	__builtin_unreachable();
}

/* The end of every thread: its own kernel state, a stop for amber, sigreturn. */
static void __attribute__((noreturn)) thread_finish(struct rst_task_args *a, struct rst_thread *t,
						     int leader)
{
	long ret;

	sys2(NR_arch_prctl, ARCH_SET_FS, t->fs_base);
	sys2(NR_arch_prctl, ARCH_SET_GS, t->gs_base);
	sys2(NR_set_robust_list, t->robust_head, t->robust_len ? t->robust_len : 24);
	sys1(NR_set_tid_address, t->clear_tid);
	if (t->rseq_ptr) {
		ret = sys4(NR_rseq, t->rseq_ptr, t->rseq_len, 0, t->rseq_sig);
		if (ret)
			fail(a, "rseq registration", ret);
	}
	if (t->comm[0])
		sys2(NR_prctl, PR_SET_NAME, t->comm);
	for (uint32_t i = 0; i < t->nr_pending; i++) {
		int32_t *si = (int32_t *)(t->pending + 128 * i);

		ret = sys4(NR_rt_tgsigqueueinfo, a->pid, t->tid, si[0], si);
		if (ret)
			fail(a, "queueing a pending signal", ret);
	}
	if (leader) {
		for (uint32_t i = 0; i < a->nr_shared_pending; i++) {
			int32_t *si = (int32_t *)(a->shared_pending + 128 * i);

			ret = sys3(NR_rt_sigqueueinfo, a->pid, si[0], si);
			if (ret)
				fail(a, "queueing a shared pending signal", ret);
		}
	}
	restore_sched(a, t);
	restore_seccomp(a, t);
	restore_creds(a, &t->creds);
	/* After the creds: a change of credentials clears it. */
	if (t->pdeath_sig)
		sys2(NR_prctl, PR_SET_PDEATHSIG, t->pdeath_sig);
	__atomic_add_fetch(&a->nr_ready, 1, __ATOMIC_SEQ_CST);
	/* amber, our tracer, catches this stop and then the sigreturn below. */
	sys3(NR_tgkill, a->pid, t->tid, SIGSTOP);
	sigreturn_to(t->sigframe);
}

void thread_entry(struct rst_task_args *a, struct rst_thread *t);
void thread_entry(struct rst_task_args *a, struct rst_thread *t)
{
	thread_finish(a, t, 0);
}

/*
 * clone3 for a thread: the child starts on its own stack with the same
 * registers; r12/r13 carry the args into thread_entry.
 */
static long clone_thread(struct rst_task_args *a, struct rst_thread *t)
{
	struct {
		uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size,
			tls, set_tid, set_tid_size, cgroup;
	} ca = { 0 };
	long ret;

	ca.flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM;
	ca.stack = t->stack_top - RST_STACK_SIZE;
	ca.stack_size = RST_STACK_SIZE;
	ca.set_tid = (uint64_t)t->set_tid; /* pid_t[], innermost first */
	ca.set_tid_size = t->nr_set_tid;
	{
		register long r12 __asm__("r12") = (long)a;
		register long r13 __asm__("r13") = (long)t;

		__asm__ volatile("syscall\n\t"
				 "test %%rax, %%rax\n\t"
				 "jnz 1f\n\t"
				 "mov %%r12, %%rdi\n\t"
				 "mov %%r13, %%rsi\n\t"
				 "and $-16, %%rsp\n\t"
				 "call thread_entry\n\t"
				 "ud2\n"
				 "1:\n\t"
				 : "=a"(ret)
				 : "a"((long)NR_clone3), "D"(&ca), "S"(sizeof(ca)), "r"(r12), "r"(r13)
				 : "rcx", "r11", "memory");
	}
	return ret;
}

void restorer_main(struct rst_task_args *a);
void restorer_main(struct rst_task_args *a)
{
	uint64_t all = ~0ULL;
	struct rst_thread *th = (struct rst_thread *)a->threads;
	long ret;

	sys4(NR_rt_sigprocmask, 2 /* SIG_SETMASK */, &all, 0, 8);
	if (a->cur_rseq_ptr)
		sys4(NR_rseq, a->cur_rseq_ptr, a->cur_rseq_len, 1 /* unregister */,
		     a->cur_rseq_sig);
	unmap_old(a);
	park_specials(a);
	move_premapped(a);
	move_specials(a);
	if (a->fault_at == RST_FAULT_MEM_BEFORE)
		fail(a, "AMBER_FAULT=restore-mem-before", -5);
	map_vmas(a);
	if (a->lazy_sock >= 0) {
		const char *what;

		ret = rst_lazy_register(a, &what);
		if (ret)
			fail(a, what, ret);
	}
	fill_pages(a);
	zap_pages(a);
	{
		const char *what;
		uint64_t at = 0;

		ret = rst_restore_aio_rings(a, &what, &at);
		if (ret)
			fail_at(a, what, ret, at);
	}
	finish_vmas(a);
	if (a->fault_at == RST_FAULT_MEM_AFTER)
		fail(a, "AMBER_FAULT=restore-mem-after", -5);
	restore_task_state(a);
	drop_restore_sigchld();
	for (uint32_t i = 1; i < a->nr_threads; i++) {
		ret = clone_thread(a, &th[i]);
		if (ret != th[i].tid)
			fail(a, "clone3 of a thread", ret);
	}
	/* After the threads (a timer may signal one), late, signals still blocked. */
	{
		const char *what;

		ret = rst_create_posix_timers(a, &what);
		if (!ret)
			ret = rst_arm_posix_timers(a, &what);
		if (ret)
			fail(a, what, ret);
	}
	/*
	 * Every service fd but the status pipe goes before the file locks are
	 * taken: closing any fd on a file drops the task's POSIX locks on it.
	 */
	if (a->status_fd > a->svc_fd_base)
		sys3(NR_close_range, a->svc_fd_base, a->status_fd - 1, 0);
	sys3(NR_close_range, a->status_fd + 1, ~0U, 0);
	{
		const char *what;

		ret = rst_take_file_locks(a, &what);
		if (ret)
			fail(a, what, ret);
	}
	sys1(NR_close, a->status_fd);
	/* status_fd is gone now: from here failures are only seen as deaths. */
	a->status_fd = -1;
	sys2(NR_prctl, PR_SET_DUMPABLE, a->dumpable);
	if (a->fault_at == RST_FAULT_BLOB_END)
		sys1(NR_exit_group, 42); /* no status_fd left: seen as a death */
	thread_finish(a, &th[0], 1);
}

/* Entry: rdi = args, rsp = the leader's blob stack. */
__asm__(".section .text.entry,\"ax\"\n"
	".globl restorer_entry\n"
	"restorer_entry:\n\t"
	"and $-16, %rsp\n\t"
	"call restorer_main\n\t"
	"ud2\n"
	".previous\n");
