// SPDX-License-Identifier: MIT
#define LOG_PREFIX "remote: "
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <compel/infect.h>
#include <compel/log.h>

#include "base/log.h"
#include "base/remote.h"
#include "base/util.h"

static void compel_log_cb(unsigned int lvl, const char *fmt, va_list args)
{
	char buf[1024];

	vsnprintf(buf, sizeof(buf), fmt, args);
	/* compel's errors are ours only when our call fails: log them as warnings. */
	if (lvl <= COMPEL_LOG_WARN)
		pr_warn("compel: %s", buf);
	else
		pr_debug("compel: %s", buf);
}

void remote_log_init(void)
{
	compel_log_init(compel_log_cb, log_get_level() >= LOG_DEBUG ? COMPEL_LOG_DEBUG :
								     COMPEL_LOG_WARN);
}

int remote_syscall(struct remote *r, long nr, long *ret, unsigned long a1, unsigned long a2,
		   unsigned long a3, unsigned long a4, unsigned long a5, unsigned long a6)
{
	long rv = 0;
	int err = compel_syscall(r->ctl, nr, &rv, a1, a2, a3, a4, a5, a6);

	if (err) {
		pr_err("remote syscall %ld in %d failed: %d\n", nr, r->tid, err);
		return err < 0 ? err : -EIO;
	}
	*ret = rv;
	return 0;
}

/*
 * Frees the compel handle; registers were already put back after each
 * syscall. Our prepare() gives it neither a register buffer nor a socket.
 */
static void cure(struct remote *r)
{
	if (compel_cure_local(r->ctl))
		pr_warn("compel cure of %d failed\n", r->tid);
	r->ctl = NULL;
}

/*
 * The first executable mapping of @tid: where compel puts the syscall
 * instruction it runs (and puts the code back after), as compel_prepare()
 * chooses it.
 */
static unsigned long exec_area(pid_t tid)
{
	unsigned long start = 0, end, ret = 0;
	char path[64], line[512], perms[8];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/maps", tid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx %7s", &start, &end, perms) == 3 && perms[2] == 'x' &&
		    end - start >= 64) {
			ret = start;
			break;
		}
	}
	fclose(f);
	return ret;
}

/*
 * Only compel's remote syscalls are used, so the bare handle of
 * compel_prepare_noctx() and where to put the syscall are enough.
 * compel_prepare() would also make the parasite's socket inside the
 * task's network namespace with setns(), which needs CAP_SYS_ADMIN even
 * for our own namespace: an unprivileged dump could never start.
 */
static struct parasite_ctl *prepare(pid_t tid)
{
	struct parasite_ctl *ctl = compel_prepare_noctx(tid);
	struct infect_ctx *ictx;

	if (!ctl) {
		pr_err("compel can't prepare thread %d\n", tid);
		return NULL;
	}
	ictx = compel_infect_ctx(ctl);
	ictx->sock = -1;
	ictx->task_size = compel_task_size();
	ictx->syscall_ip = exec_area(tid);
	if (!ictx->syscall_ip) {
		pr_err("thread %d has no executable mapping to run syscalls from\n", tid);
		if (compel_cure_local(ctl))
			pr_warn("compel cure of %d failed\n", tid);
		return NULL;
	}
	return ctl;
}

int remote_init(struct remote *r, pid_t pid, pid_t tid)
{
	long addr;
	int ret;

	memset(r, 0, sizeof(*r));
	r->pid = pid;
	r->tid = tid;
	r->ctl = prepare(tid);
	if (!r->ctl)
		return -EIO;
	ret = remote_syscall(r, SYS_mmap, &addr, 0, REMOTE_SCRATCH_LEN, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (ret || is_err_val(addr)) {
		pr_err("can't map scratch memory in %d: %ld\n", pid, ret ? (long)ret : addr);
		cure(r);
		return ret ? ret : (int)addr;
	}
	r->scratch = addr;
	r->scratch_len = REMOTE_SCRATCH_LEN;
	r->owns_scratch = true;
	return 0;
}

int remote_init_thread(struct remote *r, const struct remote *leader, pid_t tid)
{
	memset(r, 0, sizeof(*r));
	r->pid = leader->pid;
	r->tid = tid;
	r->scratch = leader->scratch;
	r->scratch_len = leader->scratch_len;
	r->ctl = prepare(tid);
	return r->ctl ? 0 : -EIO;
}

int remote_init_bare(struct remote *r, pid_t pid)
{
	memset(r, 0, sizeof(*r));
	r->pid = r->tid = pid;
	r->ctl = prepare(pid);
	return r->ctl ? 0 : -EIO;
}

void remote_fini(struct remote *r)
{
	long ret;

	if (!r->ctl)
		return;
	if (r->owns_scratch && r->scratch &&
	    (remote_syscall(r, SYS_munmap, &ret, r->scratch, r->scratch_len, 0, 0, 0, 0) || ret))
		pr_err("can't unmap scratch memory in %d\n", r->pid);
	cure(r);
	r->scratch = 0;
}

static int remote_xfer(struct remote *r, size_t off, void *buf, size_t len, bool write)
{
	struct iovec local = { .iov_base = buf, .iov_len = len };
	struct iovec rem = { .iov_base = (void *)(uintptr_t)(r->scratch + off), .iov_len = len };
	ssize_t n;

	if (off + len > r->scratch_len)
		return -E2BIG;
	n = write ? process_vm_writev(r->pid, &local, 1, &rem, 1, 0) :
		    process_vm_readv(r->pid, &local, 1, &rem, 1, 0);
	if (n != (ssize_t)len) {
		pr_perror("scratch %s in %d", write ? "write" : "read", r->pid);
		return -EIO;
	}
	return 0;
}

int remote_read(struct remote *r, size_t off, void *buf, size_t len)
{
	return remote_xfer(r, off, buf, len, false);
}

int remote_write(struct remote *r, size_t off, const void *buf, size_t len)
{
	return remote_xfer(r, off, (void *)buf, len, true);
}
