// SPDX-License-Identifier: MIT
/*
 * Building the restorer's arguments (restorer_args.h) in a task about to
 * become its saved self: a mapping that collides with no saved VMA holds
 * the blob code, the arguments, one rt_sigframe per thread (saved
 * registers and xsave state) and the threads' stacks.
 */
#define LOG_PREFIX "blob: "
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "files/files.h"
#include "image/image.h"
#include "restore/lazy_proto.h"
#include "base/fault.h"
#include "base/log.h"
#include "base/proc.h"
#include "restore/creds.h"
#include "restore/pidns.h"
#include "userns.pb-c.h"
#include "restore/restore.h"
#include "restore/task.h"
#include "restore/seccomp.h"
#include "restore/task_state.h"
#include "restore/restorer_args.h"
#include "base/util.h"
#include "mem/vma.h"
#include "image/xsave.h"

extern const char amber_restorer_blob[], amber_restorer_blob_end[];
extern const ptrdiff_t __rseq_offset __attribute__((weak));
extern const unsigned int __rseq_size __attribute__((weak));

#define RSEQ_SIG_X86 0x53053053
#define TASK_SIZE    0x7ffffffff000ULL

struct kernel_sigcontext {
	uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
	uint64_t di, si, bp, bx, dx, ax, cx, sp, ip, flags;
	uint16_t cs, gs, fs, ss;
	uint64_t err, trapno, oldmask, cr2, fpstate;
	uint64_t reserved1[8];
};

struct kernel_ucontext {
	uint64_t uc_flags;
	uint64_t uc_link;
	uint64_t ss_sp;
	int32_t ss_flags, ss_pad;
	uint64_t ss_size;
	struct kernel_sigcontext mc;
	uint64_t uc_sigmask;
};

struct rt_sigframe {
	uint64_t pretcode;
	struct kernel_ucontext uc;
	uint8_t info[128];
};

#define UC_FP_XSTATE	     0x1
#define UC_SIGCONTEXT_SS     0x2
#define UC_STRICT_RESTORE_SS 0x4

/* A bump allocator over the blob mapping. */
struct layout {
	uint8_t *base;
	size_t used, size;
};

/* AMBER_FAULT stages inside the restorer blob, which has no getenv(). */
static uint32_t rst_blob_fault_at(void)
{
	if (fault_injected("restore-mem-before"))
		return RST_FAULT_MEM_BEFORE;
	if (fault_injected("restore-mem-after"))
		return RST_FAULT_MEM_AFTER;
	return fault_injected("restore-blob-end") ? RST_FAULT_BLOB_END : RST_FAULT_NONE;
}

static void *lay(struct layout *l, size_t size, size_t align)
{
	size_t off = (l->used + align - 1) & ~(align - 1);

	if (off + size > l->size)
		return NULL;
	l->used = off + size;
	return l->base + off;
}

static size_t frame_size(void)
{
	return sizeof(struct rt_sigframe) + 64 + xsave_size() + 64;
}

/* Room for every thread's seccomp filters. */
static size_t seccomp_size(struct rst_ctx *rc, struct rst_task *t)
{
	SeccompFilter *chain[RST_SECCOMP_MAX_CHAIN];
	size_t s = 0, bytes;

	for (int i = 0; i < t->nr_threads; i++) {
		int n = rst_seccomp_chain(rc, t, i, chain, RST_SECCOMP_MAX_CHAIN, &bytes);

		s += n * (sizeof(struct rst_seccomp_filter) + 16) + bytes + 32;
	}
	return s;
}

static size_t blob_size(struct rst_ctx *rc, struct rst_task *t)
{
	size_t s = PAGE_ALIGN(amber_restorer_blob_end - amber_restorer_blob);

	s += sizeof(struct rst_task_args) + 64;
	s += t->mm->n_vmas * sizeof(struct rst_vma) + t->pages.nr_runs * sizeof(struct rst_run);
	s += t->pages.nr_zaps * sizeof(struct rst_zap);
	s += t->nr_threads * (sizeof(struct rst_thread) + frame_size() + 64 * 128 + 64);
	s += t->mm->n_mm_saved_auxv * 8 + 64 * 128 + 4096;
	s += sizeof(struct lazy_msg) + t->mm->n_vmas * sizeof(struct lazy_range) + 16;
	s += rst_nr_posix_timers(t) * sizeof(struct rst_posix_timer) + 16;
	s += max(files_task_locks(&rc->files, t - rc->tasks, NULL, 0), 0) *
	     sizeof(struct rst_file_lock) + 16;
	s += seccomp_size(rc, t);
	s += t->mm->n_aios * sizeof(struct rst_aio_ring) + 16;
	s = PAGE_ALIGN(s);
	s += t->nr_threads * RST_STACK_SIZE;
	return s;
}

/* Current and saved [vvar*]/[vdso], paired in address order. */
static int find_specials(struct rst_task *t, struct rst_task_args *a, size_t *park_len)
{
	struct proc_vma *cur = NULL;
	int nr = proc_parse_smaps(0 /* self */, &cur), n = 0, ret = 0;

	if (nr < 0)
		return nr;
	*park_len = 0;
	for (int i = 0; i < nr && n < RST_MAX_SPECIAL; i++) {
		const char *p = cur[i].path;

		if (!p || (strcmp(p, "[vdso]") && strcmp(p, "[vvar]") && strcmp(p, "[vvar_vclock]")))
			continue;
		a->special[n].cur = cur[i].start;
		a->special[n].len = cur[i].end - cur[i].start;
		*park_len += a->special[n].len;
		n++;
	}
	proc_vmas_free(cur, nr);
	a->nr_special = n;
	int k = 0;

	/* CRIU saves [vvar] and [vvar_vclock] as one VMA: a saved one may take several */
	for (size_t i = 0; i < t->mm->n_vmas && !ret; i++) {
		VmaEntry *v = t->mm->vmas[i];
		uint64_t off = 0;

		if (!(v->status & (VMA_AREA_VDSO | VMA_AREA_VVAR)))
			continue;
		while (!ret && off < v->end - v->start) {
			if (k >= n || off + a->special[k].len > v->end - v->start ||
			    (off && a->special[k].cur != a->special[k - 1].cur + a->special[k - 1].len))
				ret = -EINVAL;
			else
				a->special[k].target = v->start + off, off += a->special[k++].len;
		}
	}
	if (!ret && k != n)
		ret = -EINVAL;
	if (ret)
		pr_err("%d: the vdso/vvar layout differs from the dump (another kernel?)\n",
		       t->pid);
	return ret;
}

/*
 * Maps @size bytes where none of the task's saved VMAs lies and nothing is
 * mapped now, highest first and above @floor; NULL when there is no room.
 * What the restorer later moves or maps into place then never lands on
 * something it has yet to move.
 */
void *rst_map_unused(const MmEntry *mm, size_t size, int prot, uint64_t floor)
{
	for (ssize_t i = mm->n_vmas; i >= 0; i--) {
		uint64_t lo = i ? mm->vmas[i - 1]->end : 0x10000;
		uint64_t hi = i < (ssize_t)mm->n_vmas ? mm->vmas[i]->start : TASK_SIZE;

		for (uint64_t at = (hi - size) & ~(PAGE_SIZE - 1);
		     hi > size && at >= lo && at > floor; at -= 64 << 20) {
			void *p = mmap((void *)at, size, prot,
				       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE,
				       -1, 0);

			if (p != MAP_FAILED)
				return p;
			if (at < lo + (64 << 20))
				break;
		}
	}
	return NULL;
}

static void *map_blob(struct rst_task *t, size_t size)
{
	MmEntry *mm = t->mm;
	uint64_t lowest_exec = TASK_SIZE;

	for (size_t i = 0; i < mm->n_vmas; i++)
		if ((mm->vmas[i]->prot & PROT_EXEC) && !(mm->vmas[i]->status & VMA_AREA_VDSO))
			lowest_exec = min(lowest_exec, mm->vmas[i]->start);
	/* Stay above an executable VMA: the final remote munmap runs from there. */
	return rst_map_unused(mm, size, PROT_READ | PROT_WRITE | PROT_EXEC, lowest_exec);
}

static int svc_fd(struct rst_ctx *rc, int fd)
{
	int n;

	if (fd < 0)
		return fd;
	n = fcntl(fd, F_DUPFD, rc->svc_fd_base);
	close(fd);
	return n < 0 ? -errno : n;
}

static void fill_creds(struct rst_ctx *rc, struct rst_creds *c, const CredsEntry *ce)
{
	const UsernsEntry *ue = rc->ns.user;

	if (!ce)
		return;
	c->uid = ce->uid, c->euid = ce->euid, c->suid = ce->suid, c->fsuid = ce->fsuid;
	c->gid = ce->gid, c->egid = ce->egid, c->sgid = ce->sgid, c->fsgid = ce->fsgid;
	c->secbits = ce->secbits;
	/*
	 * In a user namespace of its own the ids are the tree's: the task
	 * starts as amber's uid, unmapped there, and must take them. With
	 * setgroups denied it keeps the groups it was born with.
	 */
	c->keep_ids = !ue && rst_creds_ids_ours(ce);
	c->keep_groups = ue && ue->amber_setgroups_deny;
	c->nr_groups = min(ce->n_groups, (size_t)64);
	if (c->nr_groups) /* groups is NULL when there are none */
		memcpy(c->groups, ce->groups, c->nr_groups * 4);
#define CAP64(f) (ce->n_##f >= 2 ? ((uint64_t)ce->f[1] << 32 | ce->f[0]) : 0)
	c->cap_inh = CAP64(cap_inh);
	c->cap_prm = CAP64(cap_prm);
	c->cap_eff = CAP64(cap_eff);
	c->cap_bnd = CAP64(cap_bnd);
#undef CAP64
}

static uint64_t copy_siginfos(struct layout *l, SignalQueueEntry *q, uint32_t *nr)
{
	uint8_t *p;

	*nr = 0;
	if (!q || !q->n_signals)
		return 0;
	p = lay(l, 128 * q->n_signals, 16);
	if (!p)
		return 0;
	for (size_t i = 0; i < q->n_signals; i++)
		if (q->signals[i]->siginfo.len) /* data is NULL when empty */
			memcpy(p + 128 * i, q->signals[i]->siginfo.data,
			       min(q->signals[i]->siginfo.len, (size_t)128));
	*nr = q->n_signals;
	return (uintptr_t)p;
}

static int build_frame(struct layout *l, CoreEntry *c, struct rst_thread *th)
{
	UserX86RegsEntry *g = c->thread_info->gpregs;
	ThreadSasEntry *sas = c->thread_core->sas;
	struct rt_sigframe *f = lay(l, sizeof(*f), 64);
	uint8_t *xs = lay(l, xsave_size() + 64, 64);
	struct kernel_sigcontext *mc;

	if (!f || !xs)
		return -ENOMEM;
	f->uc.uc_flags = UC_FP_XSTATE | UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS;
	/* CRIU keeps the main thread's mask in the task core only */
	if (c->thread_core->has_blk_sigset)
		f->uc.uc_sigmask = c->thread_core->blk_sigset;
	else
		f->uc.uc_sigmask = c->tc ? c->tc->blk_sigset : 0;
	if (sas) {
		f->uc.ss_sp = sas->ss_sp;
		f->uc.ss_flags = sas->ss_flags & ~1 /* SS_ONSTACK is not settable */;
		f->uc.ss_size = sas->ss_size;
	} else {
		f->uc.ss_flags = 2; /* SS_DISABLE */
	}
	mc = &f->uc.mc;
	mc->r8 = g->r8, mc->r9 = g->r9, mc->r10 = g->r10, mc->r11 = g->r11;
	mc->r12 = g->r12, mc->r13 = g->r13, mc->r14 = g->r14, mc->r15 = g->r15;
	mc->di = g->di, mc->si = g->si, mc->bp = g->bp, mc->bx = g->bx;
	mc->dx = g->dx, mc->ax = g->ax, mc->cx = g->cx, mc->sp = g->sp;
	mc->ip = g->ip, mc->flags = g->flags;
	mc->cs = g->cs, mc->ss = g->ss, mc->gs = 0, mc->fs = 0;
	mc->fpstate = (uintptr_t)xs;
	if (xsave_from_entry(c->thread_info->fpregs, xs, xsave_size() + 64))
		return -EINVAL;
	th->sigframe = (uintptr_t)f;
	th->fs_base = g->fs_base;
	th->gs_base = g->gs_base;
	return 0;
}

/* No TSYNC (each thread gets its own chain) and no listener fd to hand out. */
#define SECCOMP_KEPT_FLAGS (2 /* LOG */ | 4 /* SPEC_ALLOW */)

static int fill_seccomp(struct rst_ctx *rc, struct layout *l, struct rst_task *t, int i,
			struct rst_thread *th)
{
	ThreadCoreEntry *tc = t->cores[i]->thread_core;
	SeccompFilter *chain[RST_SECCOMP_MAX_CHAIN];
	struct rst_seccomp_filter *fs;
	size_t bytes;
	int n = rst_seccomp_chain(rc, t, i, chain, RST_SECCOMP_MAX_CHAIN, &bytes);

	th->no_new_privs = tc->has_amber_no_new_privs && tc->amber_no_new_privs;
	th->seccomp_mode = tc->has_seccomp_mode ? tc->seccomp_mode : 0;
	if (!n)
		return 0;
	fs = lay(l, sizeof(*fs) * n, 16);
	if (!fs)
		return -ENOMEM;
	for (int k = 0; k < n; k++) {
		void *insns = lay(l, chain[k]->filter.len, 16);

		if (!insns)
			return -ENOMEM;
		memcpy(insns, chain[k]->filter.data, chain[k]->filter.len);
		fs[k].len = chain[k]->filter.len / 8;
		fs[k].flags = (chain[k]->has_flags ? chain[k]->flags : 0) & SECCOMP_KEPT_FLAGS;
		fs[k].insns = (uintptr_t)insns;
	}
	th->filters = (uintptr_t)fs;
	th->nr_filters = n;
	return 0;
}

static int fill_thread(struct rst_ctx *rc, struct layout *l, struct rst_task *t, int i,
		       struct rst_thread *th)
{
	CoreEntry *c = t->cores[i];
	ThreadCoreEntry *tc = c->thread_core;

	rst_pidns_thread_tids(t, i, th->set_tid, &th->nr_set_tid);
	th->tid = th->set_tid[0];
	th->clear_tid = c->thread_info->clear_tid_addr;
	th->robust_head = tc->futex_rla;
	th->robust_len = tc->futex_rla_len;
	th->pdeath_sig = tc->has_pdeath_sig ? tc->pdeath_sig : 0;
	if (tc->rseq_entry) {
		th->rseq_ptr = tc->rseq_entry->rseq_abi_pointer;
		th->rseq_len = tc->rseq_entry->rseq_abi_size;
		th->rseq_sig = tc->rseq_entry->signature;
	}
	if (tc->comm)
		strncpy(th->comm, tc->comm, sizeof(th->comm) - 1);
	fill_creds(rc, &th->creds, tc->creds);
	rst_fill_thread_sched(t, i, th);
	th->pending = copy_siginfos(l, tc->signals_p, &th->nr_pending);
	if (fill_seccomp(rc, l, t, i, th))
		return -ENOMEM;
	return build_frame(l, c, th);
}

static int fill_vmas(struct rst_ctx *rc, struct layout *l, struct rst_task *t,
		     struct rst_task_args *a)
{
	struct rst_vma *vs = lay(l, sizeof(*vs) * t->mm->n_vmas, 16);

	if (!vs)
		return -ENOMEM;
	for (size_t i = 0; i < t->mm->n_vmas; i++) {
		VmaEntry *v = t->mm->vmas[i];
		struct rst_vma *r = &vs[i];

		r->start = v->start, r->end = v->end, r->pgoff = v->pgoff;
		r->prot = v->prot, r->status = v->status, r->madv = v->madv;
		r->flags = v->flags & (MAP_SHARED | MAP_PRIVATE | MAP_GROWSDOWN);
		if (v->flags & VMA_MAP_HUGETLB) /* with its page size */
			r->flags |= v->flags & (VMA_MAP_HUGETLB | (0x3fu << 26));
		r->fd = -1;
		r->lazy = rc->lazy_fd >= 0 && vma_can_be_lazy(v->status, v->flags, v->madv);
		r->locked = !!(v->flags & VMA_MAP_LOCKED);
		r->premap = t->premap ? t->premap[i] : 0;
		if (v->status & (VMA_FILE_PRIVATE | VMA_FILE_SHARED)) {
			r->fd = svc_fd(rc, files_open_reg(&rc->files, v->shmid, v->has_fdflags ?
							  v->fdflags : O_RDONLY));
		} else if (v->status & VMA_AREA_SOCKET) {
			r->fd = svc_fd(rc, files_packet_map_fd(&rc->files, v->shmid));
		} else if (v->status & VMA_AREA_SYSVIPC) {
			uint64_t size = 0;
			int ret = rst_ipc_shm_size(rc, t->pid, v->shmid, &size);

			if (ret)
				return ret;
			r->shmid = v->shmid;
			r->shm_size = PAGE_ALIGN(size);
			/* CRIU writes no fdflags here: its protections tell, as in CRIU. */
			r->shm_rdonly = v->has_fdflags ? (v->fdflags & O_ACCMODE) == O_RDONLY :
							 !(v->prot & PROT_WRITE);
			continue;
		} else if (v->status & VMA_ANON_SHARED) {
			for (int s = 0; s < rc->nr_shmems; s++)
				if (rc->shmems[s].shmid == v->shmid)
					r->fd = fcntl(rc->shmems[s].fd, F_DUPFD, rc->svc_fd_base);
		}
		if ((v->status & (VMA_FILE_PRIVATE | VMA_FILE_SHARED | VMA_ANON_SHARED |
				  VMA_AREA_SOCKET)) && r->fd < 0) {
			pr_err("%d: can't open the file of VMA %#llx\n", t->pid,
			       (unsigned long long)v->start);
			return -ENOENT;
		}
	}
	a->vmas = (uintptr_t)vs;
	a->nr_vmas = t->mm->n_vmas;
	a->premap_start = t->premap_start;
	a->premap_len = t->premap_len;
	return 0;
}

/* Another root (task.c): the restorer chroots into it, from the service fds. */
static int fill_root(struct rst_ctx *rc, struct rst_task *t, struct rst_task_args *a)
{
	a->root_fd = a->cwd_fd = -1;
	if (!t->chroot)
		return 0;
	a->root_fd = svc_fd(rc, t->root_fd);
	a->cwd_fd = svc_fd(rc, t->cwd_fd);
	return a->root_fd < 0 ? a->root_fd : a->cwd_fd < 0 ? a->cwd_fd : 0;
}

/* The AIO contexts (the loader checked each against its ring VMA). */
static int fill_aio_rings(struct layout *l, const MmEntry *mm, struct rst_task_args *a)
{
	struct rst_aio_ring *r;

	if (!mm->n_aios)
		return 0;
	r = lay(l, sizeof(*r) * mm->n_aios, 16);
	if (!r)
		return -ENOMEM;
	for (size_t i = 0; i < mm->n_aios; i++)
		r[i] = (struct rst_aio_ring){ .addr = mm->aios[i]->id,
					      .len = mm->aios[i]->ring_len,
					      .nr_req = mm->aios[i]->nr_req };
	a->aio_rings = (uintptr_t)r;
	a->nr_aio_rings = mm->n_aios;
	return 0;
}

static int fill_mm(struct rst_ctx *rc, struct layout *l, struct rst_task *t,
		   struct rst_task_args *a)
{
	MmEntry *mm = t->mm;
	uint64_t *auxv = lay(l, mm->n_mm_saved_auxv * 8 + 8, 16);

	if (!auxv)
		return -ENOMEM;
	if (mm->n_mm_saved_auxv)
		memcpy(auxv, mm->mm_saved_auxv, mm->n_mm_saved_auxv * 8);
	a->mm_map[0] = mm->mm_start_code, a->mm_map[1] = mm->mm_end_code;
	a->mm_map[2] = mm->mm_start_data, a->mm_map[3] = mm->mm_end_data;
	a->mm_map[4] = mm->mm_start_brk, a->mm_map[5] = mm->mm_brk;
	a->mm_map[6] = mm->mm_start_stack, a->mm_map[7] = mm->mm_arg_start;
	a->mm_map[8] = mm->mm_arg_end, a->mm_map[9] = mm->mm_env_start;
	a->mm_map[10] = mm->mm_env_end, a->mm_map[11] = (uintptr_t)auxv;
	a->auxv_size = mm->n_mm_saved_auxv * 8;
	a->exe_fd = svc_fd(rc, files_open_reg(&rc->files, mm->exe_file_id, O_RDONLY));
	a->has_mm_map = 1;
	if (fill_aio_rings(l, mm, a))
		return -ENOMEM;
	a->dumpable = mm->has_dumpable ? mm->dumpable : 1;
	a->thp_disabled = mm->has_thp_disabled && mm->thp_disabled;
	if (a->exe_fd < 0)
		return a->exe_fd;

	const struct pm_chain *pc = &t->pages;
	struct rst_vma *vs = (struct rst_vma *)a->vmas;
	struct rst_run *runs = lay(l, sizeof(*runs) * (pc->nr_runs + 1), 16);
	/* a zap may be cut at each VMA boundary */
	struct rst_zap *zaps = lay(l, sizeof(*zaps) * (pc->nr_zaps + a->nr_vmas + 1), 16);
	uint32_t n = 0, nz = 0;

	if (!runs || !zaps)
		return -ENOMEM;
	/* The pages fds are inherited, above svc_fd_base: the blob closes them. */
	for (int i = 0; i < pc->nr_runs; i++) {
		const struct rst_pages *p = &pc->runs[i];
		uint32_t vi = 0;

		/* A lazy VMA's pages are the daemon's; a premapped one is filled. */
		while (vi < a->nr_vmas && vs[vi].end <= p->vaddr)
			vi++;
		if (vi < a->nr_vmas && (vs[vi].lazy || vs[vi].premap))
			continue;
		runs[n].vaddr = p->vaddr;
		runs[n].nr_pages = p->nr_pages;
		runs[n].off = p->off;
		runs[n].csum = p->csum;
		runs[n].csum_ver = p->csum_ver;
		runs[n].fd = pc->layers[p->layer].pages_fd;
		n++;
	}
	/*
	 * Zaps undo older layers' pages the restorer laid down: none in a
	 * lazy VMA, where the daemon delivers only the newest (and a
	 * MADV_DONTNEED there would be an event for it to wait on).
	 */
	for (int i = 0, vi = 0; i < pc->nr_zaps; i++) {
		const struct pm_range *z = &pc->zaps[i];

		while (vi < (int)a->nr_vmas && vs[vi].end <= z->start)
			vi++;
		for (int j = vi; j < (int)a->nr_vmas && vs[j].start < z->end; j++) {
			uint64_t s0 = max(z->start, vs[j].start), e0 = min(z->end, vs[j].end);

			if (vs[j].lazy || vs[j].premap || nz == pc->nr_zaps + a->nr_vmas)
				continue;
			zaps[nz].start = s0;
			zaps[nz++].len = e0 - s0;
		}
	}
	a->runs = (uintptr_t)runs;
	a->nr_runs = n;
	a->zaps = (uintptr_t)zaps;
	a->nr_zaps = nz;
	return 0;
}

/* The LZ_TASK message the blob sends with its uffd: pid and lazy ranges. */
static int fill_lazy(struct rst_ctx *rc, struct layout *l, struct rst_task *t,
		     struct rst_task_args *a)
{
	struct rst_vma *vs = (struct rst_vma *)a->vmas;
	struct lazy_msg *m;
	uint32_t n = 0;

	a->lazy_sock = -1;
	a->uffd = -1;
	if (rc->lazy_fd < 0)
		return 0;
	for (uint32_t i = 0; i < a->nr_vmas; i++)
		n += vs[i].lazy;
	if (!n)
		return 0; /* nothing lazy: no uffd for this task */
	if (n > LAZY_MAX_RANGES) {
		pr_err("%d: %u lazy VMAs, at most %d supported\n", t->pid, n, LAZY_MAX_RANGES);
		return -E2BIG;
	}
	m = lay(l, sizeof(*m) + n * sizeof(m->ranges[0]), 16);
	if (!m)
		return -ENOMEM;
	m->magic = LAZY_MAGIC;
	m->type = LZ_TASK;
	m->pid = t->pid;
	/* pid is the tree's: with the namespace, the daemon finds the task (lazy/mms.c) */
	/* The root's namespace, which numbers the images, also for a nested task (pidns.c). */
	m->c = rc->root_pidns_ino;
	m->nr_ranges = 0;
	for (uint32_t i = 0; i < a->nr_vmas; i++) {
		if (!vs[i].lazy)
			continue;
		m->ranges[m->nr_ranges].start = vs[i].start;
		m->ranges[m->nr_ranges++].end = vs[i].end;
	}
	a->lazy_sock = rc->lazy_fd;
	a->lazy_msg = (uintptr_t)m;
	a->lazy_msg_len = sizeof(*m) + n * sizeof(m->ranges[0]);
	a->uffd_features = rc->uffd_features;
	return 0;
}

/*
 * A lazy task in a user namespace of its own (ns_user.c): its uffd from
 * /dev/userfaultfd, put in the device's place (its children have forked:
 * they hold their own), then a SIGSTOP at which amber, its tracer in the
 * host's namespace, does the UFFDIO_API (restore.c, give_uffd_features()).
 */
static int make_own_uffd(struct rst_ctx *rc, struct rst_task_args *a)
{
	int uffd;

	if (a->lazy_sock < 0 || rc->uffd_dev_fd < 0)
		return 0;
	if (fault_injected("restore-uffd-new")) {
		errno = EIO;
		uffd = -1;
	} else {
		uffd = ioctl(rc->uffd_dev_fd, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
	}
	if (uffd < 0 || dup3(uffd, rc->uffd_dev_fd, O_CLOEXEC) < 0) {
		int err = errno;

		pr_err("can't make a userfaultfd from /dev/userfaultfd: %s\n", strerror(err));
		if (uffd >= 0)
			close(uffd);
		return -err;
	}
	close(uffd);
	a->uffd = rc->uffd_dev_fd;
	if (syscall(SYS_tgkill, getpid(), gettid(), SIGSTOP))
		return -errno;
	return 0;
}

static int fill_posix_timers(struct rst_task *t, struct rst_task_args *a, struct layout *l)
{
	int n = rst_nr_posix_timers(t);
	struct rst_posix_timer *pt;

	if (!n)
		return 0;
	pt = lay(l, sizeof(*pt) * n, 16);
	if (!pt)
		return -ENOMEM;
	rst_fill_posix_timers(t, pt);
	a->posix_timers = (uintptr_t)pt;
	a->nr_posix_timers = n;
	/* The prctl "fails": the ids are reached by counting, as before Linux had it. */
	a->timer_ids_by_count = fault_injected("restore-timer-ids");
	if (a->timer_ids_by_count)
		pr_info("%d: POSIX timer ids by counting (AMBER_FAULT)\n", t->pid);
	return 0;
}

static int fill_file_locks(struct rst_ctx *rc, struct rst_task *t, struct rst_task_args *a,
			   struct layout *l)
{
	int n = files_task_locks(&rc->files, t - rc->tasks, NULL, 0);
	cleanup_free struct files_lock *fl = NULL;
	struct rst_file_lock *rl;

	if (n <= 0)
		return n;
	fl = calloc(n, sizeof(*fl));
	rl = lay(l, sizeof(*rl) * n, 16);
	if (!fl || !rl)
		return -ENOMEM;
	files_task_locks(&rc->files, t - rc->tasks, fl, n);
	for (int i = 0; i < n; i++) {
		rl[i] = (struct rst_file_lock){ .fd = fl[i].fd, .write = fl[i].write,
						.start = fl[i].start, .len = fl[i].len };
		rl[i].lease_break = !fl[i].breaking	  ? RST_LEASE_HELD :
				    fl[i].break_to_read ? RST_LEASE_BREAK_TO_READ :
							  RST_LEASE_BREAK_TO_NONE;
		rl[i].kind = fl[i].kind == FILES_LOCK_POSIX ? RST_LOCK_POSIX :
			     fl[i].kind == FILES_LOCK_FLOCK ? RST_LOCK_FLOCK :
			     fl[i].kind == FILES_LOCK_OFD ? RST_LOCK_OFD : RST_LOCK_LEASE;
	}
	a->file_locks = (uintptr_t)rl;
	a->nr_file_locks = n;
	pr_info("%d: %d file locks for the restorer\n", t->pid, n);
	return 0;
}

static void fill_task_core(struct rst_task *t, struct rst_task_args *a, struct layout *l)
{
	TaskCoreEntry *tc = t->cores[0]->tc;
	size_t k = 0;

	for (int sig = 1; sig <= RST_NSIG && k < tc->n_sigactions; sig++) {
		SaEntry *sa;

		if (sig == 9 || sig == 19)
			continue;
		sa = tc->sigactions[k++];
		a->sigactions[sig].handler = sa->sigaction;
		a->sigactions[sig].flags = sa->flags;
		a->sigactions[sig].restorer = sa->restorer;
		a->sigactions[sig].mask = sa->mask;
		a->nr_sigactions = sig;
	}
	if (tc->timers) {
		ItimerEntry *it[3] = { tc->timers->real, tc->timers->virt, tc->timers->prof };

		for (int w = 0; w < 3; w++) {
			if (!it[w])
				continue;
			a->itimers[w][0] = it[w]->isec, a->itimers[w][1] = it[w]->iusec;
			a->itimers[w][2] = it[w]->vsec, a->itimers[w][3] = it[w]->vusec;
		}
	}
	if (tc->has_membarrier_registration_mask)
		a->membarrier_cmds = tc->membarrier_registration_mask;
	if (tc->rlimits) {
		a->nr_rlimits = min(tc->rlimits->n_rlimits, (size_t)RST_NLIMITS);
		for (uint32_t r = 0; r < a->nr_rlimits; r++) {
			a->rlimits[r][0] = tc->rlimits->rlimits[r]->cur;
			a->rlimits[r][1] = tc->rlimits->rlimits[r]->max;
		}
	}
	a->shared_pending = copy_siginfos(l, tc->signals_s, &a->nr_shared_pending);
}

int rst_jump_to_blob(struct rst_ctx *rc, struct rst_task *t)
{
	size_t code = amber_restorer_blob_end - amber_restorer_blob, park_len, size;
	struct rst_task_args *a, probe = { 0 };
	struct rst_blob_info info;
	struct layout l;
	struct rst_thread *ths;
	uint8_t *base;
	int ret;

	ret = find_specials(t, &probe, &park_len);
	if (ret)
		return ret;
	size = blob_size(rc, t) + PAGE_ALIGN(park_len);
	base = map_blob(t, size);
	if (!base) {
		pr_err("%d: no room for the restorer\n", t->pid);
		return -ENOMEM;
	}
	memcpy(base, amber_restorer_blob, code);
	l.base = base;
	l.size = size - PAGE_ALIGN(park_len) - t->nr_threads * RST_STACK_SIZE;
	l.used = PAGE_ALIGN(code);
	a = lay(&l, sizeof(*a), 64);
	ths = lay(&l, sizeof(*ths) * t->nr_threads, 64);
	if (!a || !ths)
		return -ENOMEM;
	memcpy(a->special, probe.special, sizeof(probe.special));
	a->nr_special = probe.nr_special;
	a->blob_start = (uintptr_t)base;
	a->blob_len = size;
	a->park = (uintptr_t)base + size - PAGE_ALIGN(park_len);
	a->pid = rst_pidns_local(t, t); /* its syscalls take its own namespace's pids */
	a->status_fd = rc->status_fd;
	a->fault_at = rst_blob_fault_at();
	a->svc_fd_base = rc->svc_fd_base;
	a->task_size = TASK_SIZE;
	a->threads = (uintptr_t)ths;
	a->nr_threads = t->nr_threads;
	if (&__rseq_size && __rseq_size) {
		a->cur_rseq_ptr = (uintptr_t)__builtin_thread_pointer() + __rseq_offset;
		a->cur_rseq_len = __rseq_size < 32 ? 32 : __rseq_size;
		a->cur_rseq_sig = RSEQ_SIG_X86;
	}
	ret = fill_vmas(rc, &l, t, a);
	if (!ret)
		ret = fill_mm(rc, &l, t, a);
	if (!ret)
		ret = fill_lazy(rc, &l, t, a);
	if (!ret)
		ret = make_own_uffd(rc, a);
	if (!ret)
		ret = fill_root(rc, t, a);
	for (int i = 0; !ret && i < t->nr_threads; i++) {
		ret = fill_thread(rc, &l, t, i, &ths[i]);
		ths[i].stack_top = (uintptr_t)base + l.size + (i + 1) * RST_STACK_SIZE - 64;
	}
	if (!ret)
		ret = fill_posix_timers(t, a, &l);
	if (!ret)
		ret = fill_file_locks(rc, t, a, &l);
	if (ret)
		return ret;
	fill_task_core(t, a, &l);

	info.pid = t->pid;
	info.start = (uintptr_t)base;
	info.len = size;
	if (write(rc->info_fd, &info, sizeof(info)) != sizeof(info))
		return -EIO;
	/* a in rdi by constraint: a "mov" there could overwrite base, if given rdi */
	__asm__ volatile("mov %0, %%rsp\n\t"
			 "jmp *%2\n\t"
			 :
			 : "r"(ths[0].stack_top), "D"(a), "r"(base)
			 : "memory");
	__builtin_unreachable();
}
