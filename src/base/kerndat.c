// SPDX-License-Identifier: MIT
#define LOG_PREFIX "kerndat: "
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <compel/infect.h>

#include "base/kerndat.h"
#include "base/log.h"
#include "base/remote.h"
#include "base/uapi.h"
#include "base/util.h"

static const char *const names[KD_NR_FEATURES] = {
	[KD_PTRACE_SEIZE] = "ptrace-seize",   [KD_COMPEL] = "compel",
	[KD_UFFD] = "uffd",		      [KD_UFFD_WP] = "uffd-wp",
	[KD_UFFD_WP_ASYNC] = "uffd-wp-async", [KD_UFFD_EVENTS] = "uffd-events",
	[KD_PAGEMAP_SCAN] = "pagemap-scan",   [KD_SOFT_DIRTY] = "soft-dirty",
	[KD_PIDFD_GETFD] = "pidfd-getfd",     [KD_CLONE3_SET_TID] = "clone3-set-tid",
	[KD_KEXEC] = "kexec",		      [KD_PKRAM] = "pkram",
};

const char *kd_name(enum kd_feature f)
{
	return names[f];
}

int kd_lookup(const char *name)
{
	for (int i = 0; i < KD_NR_FEATURES; i++)
		if (!strcmp(names[i], name))
			return i;
	return -1;
}

#define set(r, good, ...) \
	do { (r)->ok = (good); snprintf((r)->detail, sizeof((r)->detail), __VA_ARGS__); } while (0)

/* A child that sleeps until killed, for the probes that need a victim. */
static pid_t spawn_sleeper(void)
{
	pid_t pid = fork();

	if (pid == 0) {
		for (;;)
			pause();
	}
	return pid;
}

static void reap(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

static void probe_seize_compel(struct kerndat *kd, bool want_compel)
{
	struct kd_result *r = &kd->f[KD_PTRACE_SEIZE], *c = &kd->f[KD_COMPEL];
	pid_t pid = spawn_sleeper();
	struct remote rem;
	long ret = 0;
	int st;

	set(c, false, "not probed: needs ptrace");
	if (pid < 0) {
		set(r, false, "fork: %s", strerror(errno));
		return;
	}
	if (ptrace(PTRACE_SEIZE, pid, 0, 0) || ptrace(PTRACE_INTERRUPT, pid, 0, 0) ||
	    waitpid(pid, &st, __WALL) != pid) {
		set(r, false, "PTRACE_SEIZE failed (%s): needs Linux 3.4+, and CAP_SYS_PTRACE or "
			      "kernel.yama.ptrace_scope <= 1", strerror(errno));
		reap(pid);
		return;
	}
	set(r, true, "PTRACE_SEIZE + PTRACE_INTERRUPT");
	if (want_compel) {
		remote_log_init();
		if (remote_init(&rem, pid, pid) == 0) {
			if (!remote_syscall(&rem, SYS_getpid, &ret, 0, 0, 0, 0, 0, 0) && ret == pid)
				set(c, true, "remote getpid() in a stopped task returned %ld", ret);
			else
				set(c, false, "remote syscall returned %ld, want %d", ret, pid);
			remote_fini(&rem);
		} else {
			set(c, false, "compel_prepare/remote mmap failed (see log)");
		}
	}
	ptrace(PTRACE_DETACH, pid, 0, 0);
	reap(pid);
}

static void probe_uffd(struct kerndat *kd)
{
	struct uffdio_api api = { .api = UFFD_API, .features = 0 };
	int fd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	uint64_t f;

	if (fd < 0) {
		const char *why = errno == ENOSYS ? "CONFIG_USERFAULTFD (Linux 4.3+)" :
			errno == EPERM ? "root or vm.unprivileged_userfaultfd=1" : strerror(errno);

		set(&kd->f[KD_UFFD], false, "userfaultfd(): needs %s", why);
		set(&kd->f[KD_UFFD_WP], false, "no userfaultfd");
		set(&kd->f[KD_UFFD_WP_ASYNC], false, "no userfaultfd");
		set(&kd->f[KD_UFFD_EVENTS], false, "no userfaultfd");
		return;
	}
	if (ioctl(fd, UFFDIO_API, &api)) {
		set(&kd->f[KD_UFFD], false, "UFFDIO_API: %s", strerror(errno));
		close(fd);
		return;
	}
	close(fd);
	f = api.features;
	set(&kd->f[KD_UFFD], true, "features %#llx", (unsigned long long)f);
	if (f & UFFD_FEATURE_PAGEFAULT_FLAG_WP)
		set(&kd->f[KD_UFFD_WP], true, "UFFD_FEATURE_PAGEFAULT_FLAG_WP");
	else
		set(&kd->f[KD_UFFD_WP], false, "needs Linux 5.7+ (CONFIG_HAVE_ARCH_USERFAULTFD_WP)");
	if ((f & UFFD_FEATURE_WP_ASYNC) && (f & UFFD_FEATURE_WP_UNPOPULATED))
		set(&kd->f[KD_UFFD_WP_ASYNC], true, "WP_ASYNC + WP_UNPOPULATED");
	else
		set(&kd->f[KD_UFFD_WP_ASYNC], false, "needs Linux 6.7+ (x86) / 6.10+ (arm64)");
	uint64_t ev = UFFD_FEATURE_EVENT_FORK | UFFD_FEATURE_EVENT_REMAP |
		      UFFD_FEATURE_EVENT_REMOVE | UFFD_FEATURE_EVENT_UNMAP;
	if ((f & ev) == ev)
		set(&kd->f[KD_UFFD_EVENTS], true, "fork, remap, remove, unmap");
	else
		set(&kd->f[KD_UFFD_EVENTS], false, "needs Linux 4.11+");
}

static void probe_pagemap_scan(struct kerndat *kd)
{
	struct page_region vec[4];
	struct pm_scan_arg arg = { .size = sizeof(arg) };
	char *p = mmap(NULL, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	long n = -1;

	if (p != MAP_FAILED && fd >= 0) {
		p[0] = 1;
		arg.start = (uintptr_t)p;
		arg.end = arg.start + PAGE_SIZE;
		arg.vec = (uintptr_t)vec;
		arg.vec_len = 4;
		arg.category_mask = PAGE_IS_PRESENT;
		arg.return_mask = PAGE_IS_PRESENT;
		n = ioctl(fd, PAGEMAP_SCAN, &arg);
	}
	if (n == 1)
		set(&kd->f[KD_PAGEMAP_SCAN], true, "ioctl(PAGEMAP_SCAN) on /proc/self/pagemap");
	else
		set(&kd->f[KD_PAGEMAP_SCAN], false, "PAGEMAP_SCAN: %s: needs Linux 6.7+",
		    strerror(errno));
	if (fd >= 0)
		close(fd);
	if (p != MAP_FAILED)
		munmap(p, PAGE_SIZE);
}

static int pme_of(int fd, void *p, uint64_t *pme)
{
	return pread(fd, pme, 8, (uintptr_t)p / PAGE_SIZE * 8) == 8 ? 0 : -EIO;
}

/* Dirty a page, clear soft-dirty, check it is clean, write, check it is dirty. */
static void probe_soft_dirty(struct kerndat *kd)
{
	struct kd_result *r = &kd->f[KD_SOFT_DIRTY];
	volatile char *p = mmap(NULL, PAGE_SIZE, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	int cr = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
	uint64_t before = 0, after = 0;

	if (p == MAP_FAILED || pm < 0 || cr < 0) {
		set(r, false, "can't open pagemap/clear_refs: %s", strerror(errno));
		goto out;
	}
	p[0] = 1;
	if (write(cr, "4", 1) != 1 || pme_of(pm, (void *)p, &before)) {
		set(r, false, "clear_refs: %s", strerror(errno));
		goto out;
	}
	p[0] = 2;
	if (pme_of(pm, (void *)p, &after)) {
		set(r, false, "pagemap read failed");
		goto out;
	}
	if (!(before & PME_SOFT_DIRTY) && (after & PME_SOFT_DIRTY))
		set(r, true, "clear_refs 4 + pagemap bit 55 round trip");
	else
		set(r, false, "round trip failed (bit 55 %d after clear, %d after write): needs "
			      "CONFIG_MEM_SOFT_DIRTY (x86)", !!(before & PME_SOFT_DIRTY),
		    !!(after & PME_SOFT_DIRTY));
out:
	if (pm >= 0)
		close(pm);
	if (cr >= 0)
		close(cr);
	if (p != MAP_FAILED)
		munmap((void *)p, PAGE_SIZE);
}

static void probe_pidfd_getfd(struct kerndat *kd)
{
	int pidfd = syscall(__NR_pidfd_open, getpid(), 0);
	int fd = pidfd >= 0 ? syscall(__NR_pidfd_getfd, pidfd, 0, 0) : -1;

	if (fd >= 0)
		set(&kd->f[KD_PIDFD_GETFD], true, "pidfd_open + pidfd_getfd");
	else
		set(&kd->f[KD_PIDFD_GETFD], false, "%s: needs Linux 5.6+", strerror(errno));
	if (fd >= 0)
		close(fd);
	if (pidfd >= 0)
		close(pidfd);
}

/* clone3 with set_tid = a pid we know is free: our own child's after it is reaped. */
static void probe_clone3(struct kerndat *kd)
{
	struct kd_result *r = &kd->f[KD_CLONE3_SET_TID];
	pid_t want = fork(), got;
	struct clone_args_v2 args = { 0 };
	int st;

	if (want == 0)
		_exit(0);
	if (want < 0 || waitpid(want, &st, 0) != want) {
		set(r, false, "fork: %s", strerror(errno));
		return;
	}
	args.exit_signal = SIGCHLD;
	args.set_tid = (uintptr_t)&want;
	args.set_tid_size = 1;
	got = syscall(__NR_clone3, &args, sizeof(args));
	if (got == 0)
		_exit(0);
	if (got > 0)
		waitpid(got, &st, 0);
	if (got == want)
		set(r, true, "clone3 set_tid gave pid %d", got);
	else if (got < 0)
		set(r, false, "clone3: %s: needs Linux 5.5+ and CAP_SYS_ADMIN (CAP_CHECKPOINT_RESTORE)",
		    strerror(errno));
	else
		set(r, false, "clone3 gave pid %d, asked %d", got, want);
}

static void probe_kexec(struct kerndat *kd)
{
	struct stat st;

	/* A bad kernel fd fails with EBADF before anything is loaded or unloaded. */
	long ret = syscall(SYS_kexec_file_load, -1, -1, 0, "", 0UL);

	if (ret == 0 || errno == EBUSY || errno == EINVAL || errno == EBADF)
		set(&kd->f[KD_KEXEC], true, "kexec_file_load is there");
	else if (errno == ENOSYS)
		set(&kd->f[KD_KEXEC], false, "needs CONFIG_KEXEC_FILE");
	else
		set(&kd->f[KD_KEXEC], false, "kexec_file_load: %s (CONFIG_KEXEC_FILE, root, "
					     "kernel.kexec_load_disabled=0)", strerror(errno));
	if (stat("/sys/kernel/pkram", &st) == 0)
		set(&kd->f[KD_PKRAM], true, "/sys/kernel/pkram");
	else
		set(&kd->f[KD_PKRAM], false, "needs amber's PKRAM kernel (kernel/, Linux 6.12)");
}

void kerndat_probe_one(struct kerndat *kd, enum kd_feature f)
{
	switch (f) {
	case KD_PTRACE_SEIZE:
	case KD_COMPEL:
		probe_seize_compel(kd, f == KD_COMPEL);
		break;
	case KD_UFFD:
	case KD_UFFD_WP:
	case KD_UFFD_WP_ASYNC:
	case KD_UFFD_EVENTS:
		probe_uffd(kd);
		break;
	case KD_PAGEMAP_SCAN:
		probe_pagemap_scan(kd);
		break;
	case KD_SOFT_DIRTY:
		probe_soft_dirty(kd);
		break;
	case KD_PIDFD_GETFD:
		probe_pidfd_getfd(kd);
		break;
	case KD_CLONE3_SET_TID:
		probe_clone3(kd);
		break;
	case KD_KEXEC:
	case KD_PKRAM:
		probe_kexec(kd);
		break;
	default:
		break;
	}
}

void kerndat_probe(struct kerndat *kd)
{
	memset(kd, 0, sizeof(*kd));
	probe_seize_compel(kd, true);
	probe_uffd(kd);
	probe_pagemap_scan(kd);
	probe_soft_dirty(kd);
	probe_pidfd_getfd(kd);
	probe_clone3(kd);
	probe_kexec(kd);
}
