// SPDX-License-Identifier: MIT
/*
 * core-<tid>.img: registers, FPU/xsave state, signals, creds and the other
 * per-thread and per-task state that lives outside the memory image.
 */
#define LOG_PREFIX "core: "
#include <elf.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>

#include "core.pb-c.h"
#include "dump/dump.h"
#include "dump/core.h"
#include "dump/ns.h"
#include "dump/sched.h"
#include "dump/seccomp.h"
#include "dump/timers.h"
#include "base/log.h"
#include "base/proc.h"
#include "base/uapi.h"
#include "base/util.h"
#include "image/xsave.h"

#define TASK_ALIVE   1
#define TASK_DEAD    2
#define TASK_STOPPED 3

/* The kernel's own syscall-restart codes; never seen by user space. */
#define ERESTARTSYS	      512
#define ERESTARTNOINTR	      513
#define ERESTARTNOHAND	      514
#define ERESTART_RESTARTBLOCK 516

/*
 * A thread stopped inside a syscall has rax = -ERESTART* and the syscall
 * number in orig_rax; the kernel would restart it on resume. A restored
 * thread returns through rt_sigreturn, which never restarts, so do the
 * kernel's work here: point rip back at the syscall instruction.
 */
static void regs_restart_syscall(struct user_regs_struct *r)
{
	if ((long)r->orig_rax < 0)
		return;
	switch ((long)r->rax) {
	case -ERESTARTSYS:
	case -ERESTARTNOINTR:
	case -ERESTARTNOHAND:
		r->rax = r->orig_rax;
		r->rip -= 2;
		break;
	case -ERESTART_RESTARTBLOCK:
		/* A sleep restarts whole; others fall to restart_syscall (-EINTR). */
		if (r->orig_rax == SYS_nanosleep || r->orig_rax == SYS_clock_nanosleep)
			r->rax = r->orig_rax;
		else
			r->rax = SYS_restart_syscall;
		r->rip -= 2;
		break;
	}
}

static int get_thread_regs(struct dump_thread *th)
{
	struct iovec iov = { &th->regs, sizeof(th->regs) };
	uint8_t buf[XSAVE_MAX_SIZE] __attribute__((aligned(64)));

	if (ptrace(PTRACE_GETREGSET, th->tid, NT_PRSTATUS, &iov)) {
		pr_perror("can't get registers of %d", th->tid);
		return -errno;
	}
	iov.iov_base = buf;
	iov.iov_len = sizeof(buf);
	if (ptrace(PTRACE_GETREGSET, th->tid, NT_X86_XSTATE, &iov)) {
		pr_perror("can't get xsave state of %d", th->tid);
		return -errno;
	}
	th->xsave_len = iov.iov_len;
	th->xsave = malloc(iov.iov_len);
	if (!th->xsave)
		return -ENOMEM;
	memcpy(th->xsave, buf, iov.iov_len);
	if (ptrace(PTRACE_GETSIGMASK, th->tid, sizeof(uint64_t), &th->blocked)) {
		pr_perror("can't get signal mask of %d", th->tid);
		return -errno;
	}
	return 0;
}

static UserX86RegsEntry *gpregs_entry(struct arena *a, const struct user_regs_struct *r)
{
	UserX86RegsEntry *g = arena_new(a, UserX86RegsEntry);

	if (!g)
		return NULL;
	user_x86_regs_entry__init(g);
	g->r15 = r->r15, g->r14 = r->r14, g->r13 = r->r13, g->r12 = r->r12;
	g->bp = r->rbp, g->bx = r->rbx, g->r11 = r->r11, g->r10 = r->r10;
	g->r9 = r->r9, g->r8 = r->r8, g->ax = r->rax, g->cx = r->rcx;
	g->dx = r->rdx, g->si = r->rsi, g->di = r->rdi, g->orig_ax = r->orig_rax;
	g->ip = r->rip, g->cs = r->cs, g->flags = r->eflags, g->sp = r->rsp;
	g->ss = r->ss, g->fs_base = r->fs_base, g->gs_base = r->gs_base;
	g->ds = r->ds, g->es = r->es, g->fs = r->fs, g->gs = r->gs;
	g->has_mode = true;
	g->mode = USER_X86_REGS_MODE__NATIVE;
	return g;
}

static int dump_pending(struct arena *a, pid_t tid, bool shared, SignalQueueEntry **out)
{
	siginfo_t si[32];
	struct __ptrace_peeksiginfo_args args = { .flags = shared ? PTRACE_PEEKSIGINFO_SHARED : 0 };
	SignalQueueEntry *q = NULL;

	for (;;) {
		long n;

		args.off = q ? q->n_signals : 0;
		args.nr = ARRAY_SIZE(si);
		n = ptrace(PTRACE_PEEKSIGINFO, tid, &args, si);
		if (n < 0) {
			pr_perror("can't peek pending signals of %d", tid);
			return -errno;
		}
		if (n == 0)
			break;
		if (!q) {
			q = arena_new(a, SignalQueueEntry);
			if (!q)
				return -ENOMEM;
			signal_queue_entry__init(q);
		}
		SiginfoEntry **arr = arena_array(a, SiginfoEntry *, q->n_signals + n);

		if (!arr)
			return -ENOMEM;
		if (q->n_signals) /* q->signals is NULL on the first batch */
			memcpy(arr, q->signals, q->n_signals * sizeof(*arr));
		for (long i = 0; i < n; i++) {
			SiginfoEntry *e = arena_new(a, SiginfoEntry);

			if (!e)
				return -ENOMEM;
			siginfo_entry__init(e);
			e->siginfo.len = sizeof(siginfo_t);
			e->siginfo.data = arena_memdup(a, &si[i], sizeof(siginfo_t));
			arr[q->n_signals + i] = e;
		}
		q->signals = arr;
		q->n_signals += n;
	}
	*out = q;
	return 0;
}

static uint32_t *cap_words(struct arena *a, uint64_t caps, size_t *n)
{
	uint32_t *w = arena_array(a, uint32_t, 2);

	if (w) {
		w[0] = caps;
		w[1] = caps >> 32;
		*n = 2;
	}
	return w;
}

static CredsEntry *creds_entry(const struct dump_ctx *dc, struct arena *a, struct remote *r,
			       pid_t pid, pid_t tid)
{
	struct proc_status st;
	CredsEntry *c;
	long secbits;

	if (proc_parse_status(pid, tid, &st))
		return NULL;
	if (remote_syscall(r, SYS_prctl, &secbits, PR_GET_SECUREBITS, 0, 0, 0, 0, 0))
		return NULL;
	c = arena_new(a, CredsEntry);
	if (!c)
		return NULL;
	creds_entry__init(c);
	c->uid = st.uid[0], c->euid = st.uid[1], c->suid = st.uid[2], c->fsuid = st.uid[3];
	c->gid = st.gid[0], c->egid = st.gid[1], c->sgid = st.gid[2], c->fsgid = st.gid[3];
	c->cap_inh = cap_words(a, st.cap_inh, &c->n_cap_inh);
	c->cap_prm = cap_words(a, st.cap_prm, &c->n_cap_prm);
	c->cap_eff = cap_words(a, st.cap_eff, &c->n_cap_eff);
	c->cap_bnd = cap_words(a, st.cap_bnd, &c->n_cap_bnd);
	c->secbits = secbits < 0 ? 0 : secbits;
	c->n_groups = st.nr_groups;
	c->groups = arena_memdup(a, st.groups, sizeof(uint32_t) * (st.nr_groups ? st.nr_groups : 1));
	return c->groups && !dump_ns_user_creds(dc, tid, c) ? c : NULL;
}

/* State only the thread itself can tell: asked with remote syscalls in that thread. */
static int thread_remote_state(struct dump_ctx *dc, struct remote *r, ThreadCoreEntry *tc,
			       ThreadInfoX86 *ti)
{
	struct arena *a = &dc->arena;
	stack_t ss;
	uint64_t tid_addr = 0;
	long ret;
	int err;

	err = remote_syscall(r, SYS_sigaltstack, &ret, 0, r->scratch, 0, 0, 0, 0);
	if (err || ret || remote_read(r, 0, &ss, sizeof(ss)))
		return err ? err : -EIO;
	tc->sas = arena_new(a, ThreadSasEntry);
	if (!tc->sas)
		return -ENOMEM;
	thread_sas_entry__init(tc->sas);
	tc->sas->ss_sp = (uintptr_t)ss.ss_sp;
	tc->sas->ss_size = ss.ss_size;
	tc->sas->ss_flags = ss.ss_flags;

	err = remote_syscall(r, SYS_prctl, &ret, PR_GET_TID_ADDRESS, r->scratch, 0, 0, 0, 0);
	if (err || ret || remote_read(r, 0, &tid_addr, sizeof(tid_addr)))
		return err ? err : -EIO;
	ti->clear_tid_addr = tid_addr;

	err = remote_syscall(r, SYS_prctl, &ret, PR_GET_PDEATHSIG, r->scratch, 0, 0, 0, 0);
	if (!err && !ret) {
		int sig = 0;

		if (remote_read(r, 0, &sig, sizeof(sig)))
			return -EIO;
		tc->has_pdeath_sig = sig != 0;
		tc->pdeath_sig = sig;
	}
	tc->creds = creds_entry(dc, a, r, r->pid, r->tid);
	return tc->creds ? 0 : -EIO;
}

static int thread_local_state(struct arena *a, pid_t tid, ThreadCoreEntry *tc)
{
	struct rseq_config rc;
	long head_len = 0;
	void *head = NULL;
	char name[64];
	char *comm;

	if (syscall(SYS_get_robust_list, tid, &head, &head_len)) {
		pr_perror("get_robust_list(%d)", tid);
		return -errno;
	}
	tc->futex_rla = (uintptr_t)head;
	tc->futex_rla_len = head_len;

	memset(&rc, 0, sizeof(rc));
	if (ptrace(PTRACE_GET_RSEQ_CONFIGURATION, tid, sizeof(rc), &rc) < 0) {
		pr_perror("can't get rseq configuration of %d", tid);
		return -errno;
	}
	if (rc.rseq_abi_pointer) {
		tc->rseq_entry = arena_new(a, RseqEntry);
		if (!tc->rseq_entry)
			return -ENOMEM;
		rseq_entry__init(tc->rseq_entry);
		tc->rseq_entry->rseq_abi_pointer = rc.rseq_abi_pointer;
		tc->rseq_entry->rseq_abi_size = rc.rseq_abi_size;
		tc->rseq_entry->signature = rc.signature;
	}
	snprintf(name, sizeof(name), "/proc/%d/comm", tid);
	comm = read_file_at(-1, name, NULL);
	if (comm) {
		comm[strcspn(comm, "\n")] = 0;
		tc->comm = arena_strdup(a, comm);
		free(comm);
	}
	return 0;
}

static int build_thread_core(struct dump_ctx *dc, struct dump_task *t, int idx, CoreEntry *core)
{
	struct dump_thread *th = &t->threads[idx];
	struct arena *a = &dc->arena;
	struct remote tr, *r = &t->rem;
	ThreadInfoX86 *ti = arena_new(a, ThreadInfoX86);
	ThreadCoreEntry *tc = arena_new(a, ThreadCoreEntry);
	int ret;

	if (!ti || !tc)
		return -ENOMEM;
	thread_info_x86__init(ti);
	thread_core_entry__init(tc);
	core->thread_info = ti;
	core->thread_core = tc;

	ret = get_thread_regs(th);
	if (ret)
		return ret;
	regs_restart_syscall(&th->regs);
	ti->gpregs = gpregs_entry(a, &th->regs);
	ti->fpregs = xsave_to_entry(a, th->xsave, th->xsave_len);
	if (!ti->gpregs || !ti->fpregs)
		return -ENOMEM;
	tc->has_blk_sigset = true;
	tc->blk_sigset = th->blocked;

	ret = thread_local_state(a, th->tid, tc);
	if (!ret)
		ret = dump_thread_sched(a, th->tid, tc);
	if (!ret)
		ret = dump_thread_seccomp(dc, t->pid, th->tid, tc);
	if (ret)
		return ret;
	if (idx) {
		ret = remote_init_thread(&tr, r, th->tid);
		if (ret)
			return ret;
		r = &tr;
	}
	ret = thread_remote_state(dc, r, tc, ti);
	if (idx)
		remote_fini(&tr);
	if (ret)
		return ret;
	return dump_pending(a, th->tid, false, &tc->signals_p);
}

static int dump_sigactions(struct dump_ctx *dc, struct dump_task *t, TaskCoreEntry *tc)
{
	struct arena *a = &dc->arena;
	struct kernel_sigaction ksa;
	int n = 0;

	tc->sigactions = arena_array(a, SaEntry *, NSIG_KERNEL);
	if (!tc->sigactions)
		return -ENOMEM;
	for (int sig = 1; sig <= NSIG_KERNEL; sig++) {
		SaEntry *sa;
		long ret;
		int err;

		if (sig == SIGKILL || sig == SIGSTOP)
			continue;
		err = remote_syscall(&t->rem, SYS_rt_sigaction, &ret, sig, 0, t->rem.scratch,
				     sizeof(uint64_t), 0, 0);
		if (err || ret) {
			pr_err("can't read sigaction %d of %d: %ld\n", sig, t->pid, ret);
			return err ? err : (int)ret;
		}
		if (remote_read(&t->rem, 0, &ksa, sizeof(ksa)))
			return -EIO;
		sa = arena_new(a, SaEntry);
		if (!sa)
			return -ENOMEM;
		sa_entry__init(sa);
		sa->sigaction = ksa.handler;
		sa->flags = ksa.flags;
		sa->restorer = ksa.restorer;
		sa->mask = ksa.mask;
		tc->sigactions[n++] = sa;
	}
	tc->n_sigactions = n;
	return 0;
}

static ItimerEntry *itimer_entry(struct dump_task *t, struct arena *a, int which)
{
	struct itimerval v;
	ItimerEntry *e;
	long ret;

	if (remote_syscall(&t->rem, SYS_getitimer, &ret, which, t->rem.scratch, 0, 0, 0, 0) || ret ||
	    remote_read(&t->rem, 0, &v, sizeof(v)))
		return NULL;
	e = arena_new(a, ItimerEntry);
	if (!e)
		return NULL;
	itimer_entry__init(e);
	e->isec = v.it_interval.tv_sec;
	e->iusec = v.it_interval.tv_usec;
	e->vsec = v.it_value.tv_sec;
	e->vusec = v.it_value.tv_usec;
	return e;
}

/*
 * From /proc/PID/limits, not prlimit(): prlimit() on a task of another
 * uid needs CAP_SYS_RESOURCE, which root does not always hold (a service
 * running as its own user would be refused for nothing).
 */
static int dump_rlimits(struct dump_task *t, struct arena *a, TaskCoreEntry *tc)
{
	struct rlimit lim[RLIM_NLIMITS];
	int n = proc_parse_limits(t->pid, lim, RLIM_NLIMITS);

	if (n < 0)
		return n;
	if (n != RLIM_NLIMITS) {
		pr_err("/proc/%d/limits has %d limits, amber knows %d\n", t->pid, n, RLIM_NLIMITS);
		return -EBADMSG;
	}
	task_rlimits_entry__init(tc->rlimits);
	tc->rlimits->rlimits = arena_array(a, RlimitEntry *, n);
	if (!tc->rlimits->rlimits)
		return -ENOMEM;
	for (int i = 0; i < n; i++) {
		RlimitEntry *e = arena_new(a, RlimitEntry);

		if (!e)
			return -ENOMEM;
		rlimit_entry__init(e);
		e->cur = lim[i].rlim_cur;
		e->max = lim[i].rlim_max;
		tc->rlimits->rlimits[tc->rlimits->n_rlimits++] = e;
	}
	return 0;
}

static int dump_task_misc(struct dump_ctx *dc, struct dump_task *t, TaskCoreEntry *tc)
{
	struct arena *a = &dc->arena;
	cleanup_free char *pers = read_proc(t->pid, "personality", NULL);
	long subreaper = 0;
	int ret;

	tc->personality = pers ? strtoul(pers, NULL, 16) : 0;
	tc->timers = arena_new(a, TaskTimersEntry);
	tc->rlimits = arena_new(a, TaskRlimitsEntry);
	if (!tc->timers || !tc->rlimits)
		return -ENOMEM;
	task_timers_entry__init(tc->timers);
	tc->timers->real = itimer_entry(t, a, ITIMER_REAL);
	tc->timers->virt = itimer_entry(t, a, ITIMER_VIRTUAL);
	tc->timers->prof = itimer_entry(t, a, ITIMER_PROF);
	if (!tc->timers->real || !tc->timers->virt || !tc->timers->prof) {
		pr_err("can't read interval timers of %d\n", t->pid);
		return -EIO;
	}
	ret = dump_posix_timers(t, a, tc->timers);
	/* /proc/PID/timers names the target thread as amber sees it */
	for (size_t i = 0; !ret && i < tc->timers->n_posix; i++) {
		PosixTimerEntry *e = tc->timers->posix[i];

		if (e->has_notify_thread_id)
			e->notify_thread_id = pid_map_ns(&dc->pids, e->notify_thread_id);
	}
	if (!ret)
		ret = dump_oom_score_adj(t->pid, tc);
	if (ret)
		return ret;

	ret = dump_rlimits(t, a, tc);
	if (ret)
		return ret;
	ret = remote_syscall(&t->rem, SYS_prctl, &subreaper, PR_GET_CHILD_SUBREAPER,
			     t->rem.scratch, 0, 0, 0, 0);
	if (!ret && !subreaper) {
		int v = 0;

		if (!remote_read(&t->rem, 0, &v, sizeof(v)) && v) {
			tc->has_child_subreaper = true;
			tc->child_subreaper = true;
		}
	}
	ret = dump_membarrier(t, tc);
	if (!ret)
		ret = dump_sigactions(dc, t, tc);
	if (ret)
		return ret;
	return dump_pending(a, t->pid, true, &tc->signals_s);
}

static TaskCoreEntry *task_core_entry(struct dump_ctx *dc, struct dump_task *t)
{
	struct proc_stat st;
	TaskCoreEntry *tc = arena_new(&dc->arena, TaskCoreEntry);

	if (!tc)
		return NULL;
	task_core_entry__init(tc);
	if (proc_parse_stat(t->pid, &st))
		return NULL;
	tc->comm = arena_strdup(&dc->arena, st.comm);
	tc->flags = st.flags;
	tc->task_state = t->zombie ? TASK_DEAD : t->stop_sig ? TASK_STOPPED : TASK_ALIVE;
	if (t->stop_sig) {
		tc->has_stop_signo = true;
		tc->stop_signo = t->stop_sig;
	}
	tc->exit_code = t->zombie ? t->exit_code : 0;
	if (t->cg_set) {
		tc->has_cg_set = true;
		tc->cg_set = t->cg_set;
	}
	return tc;
}

int dump_task_core(struct dump_ctx *dc, struct dump_task *t, TaskKobjIdsEntry *ids)
{
	int ret;

	for (int i = 0; i < (t->zombie ? 1 : t->nr_threads); i++) {
		CoreEntry core;

		core_entry__init(&core);
		core.mtype = CORE_ENTRY__MARCH__X86_64;
		if (i == 0) {
			core.tc = task_core_entry(dc, t);
			if (!core.tc)
				return -EIO;
			core.ids = ids;
		}
		if (!t->zombie) {
			ret = build_thread_core(dc, t, i, &core);
			if (!ret && i == 0) {
				core.tc->blk_sigset = t->threads[0].blocked;
				ret = dump_task_misc(dc, t, core.tc);
			}
			if (ret) {
				pr_err("can't dump thread %d of %d\n", t->threads[i].tid, t->pid);
				return ret;
			}
		}
		ret = img_write_one(dc->dirfd, IMG_CORE, t->zombie ? t->vpid : t->threads[i].vtid,
				    &core.base);
		if (ret)
			return ret;
	}
	return 0;
}
