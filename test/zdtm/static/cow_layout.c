// SPDX-License-Identifier: GPL-2.0
/*
 * Private memory spread over the whole address space, shared with a
 * child and a grandchild. The restore lays it out in one area before the fork and then
 * moves each VMA to its place (restore/premap.h): with VMAs from the
 * lowest gigabytes to the top of the mmap range, some move down and some
 * up whatever address the area got, and each must land whole, with its
 * own data, still shared down the tree (compared by frame, as root;
 * in the lazy modes each task's own copy is asserted).
 */
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "zdtm.h"

#define NR	 48
#define LEN	 (256UL << 10)
#define PAGE	 4096UL
#define NR_TOP	 8 /* above where any mmap(NULL) lands: these move up */
#define STEP	 ((0x7e0000000000UL / (NR - NR_TOP)) & ~((2UL << 20) - 1))

static char *vma[NR];
static uint32_t sum[NR];

static uint64_t frame(pid_t pid, const void *addr)
{
	char path[64];
	uint64_t pme = 0;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/pagemap", pid);
	fd = open(path, O_RDONLY);
	if (fd < 0 || pread(fd, &pme, 8, (uintptr_t)addr / PAGE * 8) != 8)
		pme = 0;
	if (fd >= 0)
		close(fd);
	return (pme >> 63) ? pme & ((1ULL << 55) - 1) : 0;
}

static int check_all(void)
{
	for (int k = 0; k < NR; k++)
		if (vma[k] && datachk(vma[k], LEN, &sum[k]))
			return k + 1;
	return 0;
}

struct ctl {
	volatile int go, ready, checked, bad, grandkid;
};

static void wake_up(volatile int *n)
{
	__atomic_add_fetch(n, 1, __ATOMIC_SEQ_CST);
	futex_wake_all(n);
}

/* The child (depth 1) and its own child: neither writes. */
static void __attribute__((noreturn)) descendant(struct ctl *ctl, int depth)
{
	pid_t gk = 0;
	int st = 0, bad;

	if (depth == 1) {
		gk = fork();
		if (gk < 0)
			_exit(1);
		if (gk == 0)
			descendant(ctl, 2);
		ctl->grandkid = gk;
	}
	wake_up(&ctl->ready);
	futex_wait_while(&ctl->go, 0);
	bad = check_all();
	if (bad)
		ctl->bad = bad;
	wake_up(&ctl->checked);
	futex_wait_while(&ctl->go, 1);
	if (gk && (waitpid(gk, &st, 0) != gk || st))
		_exit(1);
	_exit(0);
}

/* VMAs whose first and last pages are the same frames here and in @kid. */
static int shared_vmas(pid_t kid)
{
	int n = 0;

	for (int k = 0; k < NR; k++) {
		uint64_t f0 = frame(getpid(), vma[k]), f1 = frame(getpid(), vma[k] + LEN - PAGE);

		if (vma[k] && f0 && f1 && f0 == frame(kid, vma[k]) &&
		    f1 == frame(kid, vma[k] + LEN - PAGE))
			n++;
	}
	return n;
}

int main(int argc, char **argv)
{
	const char *mode = getenv("ZDTM_MODE");
	bool lazy = mode && strstr(mode, "lazy");
	int nr = 0, bad, st, n;
	struct ctl *ctl;
	pid_t kid;

	test_init(argc, argv);
	ctl = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (ctl == MAP_FAILED)
		return fail_errno("mmap"), 1;
	for (int k = 0; k < NR; k++) {
		void *at = (void *)(k < NR - NR_TOP ? 0x40000000UL + k * STEP :
				    0x7ff000000000UL + (k - NR + NR_TOP) * (1UL << 30));

		vma[k] = mmap(at, LEN, PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
		if (vma[k] == MAP_FAILED) {
			vma[k] = NULL; /* taken (a library, the stack): skip it */
			continue;
		}
		sum[k] = k + 11;
		datagen(vma[k], LEN, &sum[k]);
		nr++;
	}
	if (nr < NR / 2)
		test_skip("only %d of %d places were free", nr, NR);
	kid = fork();
	if (kid < 0)
		return fail_errno("fork"), 1;
	if (kid == 0)
		descendant(ctl, 1);
	while (ctl->ready < 2)
		futex_wait_while(&ctl->ready, ctl->ready);
	if (shared_vmas(kid) != nr || shared_vmas(ctl->grandkid) != nr)
		test_skip("no page frames in /proc/PID/pagemap (not root?)");
	test_daemon();
	test_waitsig();

	bad = check_all();
	if (bad)
		return fail("VMA %d at %p: data mismatch", bad - 1, vma[bad - 1]), 1;
	ctl->go = 1;
	futex_wake_all(&ctl->go);
	while (ctl->checked < 2)
		futex_wait_while(&ctl->checked, ctl->checked);
	if (ctl->bad)
		return fail("child or grandchild: VMA %d: data mismatch", ctl->bad - 1), 1;
	for (int d = 1; d <= 2; d++) {
		n = shared_vmas(d == 1 ? kid : ctl->grandkid);
		test_msg("%d of %d VMAs shared with the %s\n", n, nr, d == 1 ? "child" : "grandchild");
		if (n != (lazy ? 0 : nr))
			return fail("%d of %d VMAs shared at depth %d, want %d", n, nr, d,
				    lazy ? 0 : nr), 1;
	}
	ctl->go = 2;
	futex_wake_all(&ctl->go);
	if (waitpid(kid, &st, 0) != kid || !WIFEXITED(st) || WEXITSTATUS(st))
		return fail("child exited with %#x", st), 1;
	pass();
	return 0;
}
