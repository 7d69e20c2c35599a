// SPDX-License-Identifier: GPL-2.0
/*
 * Copy-on-write sharing across fork. The parent fills 32 MiB and forks
 * three children: two never write, one rewrites the first half. After
 * restore every task checks its data, and the parent compares page frames
 * (/proc/PID/pagemap, root only) with each child's: pages nobody wrote
 * must still be one frame. In the lazy modes each task gets its own copy
 * of every page (userfaultfd fills one task), and the test asserts that.
 * Then each child writes a page and drops another (MADV_DONTNEED, reads
 * zero), neither of which may show in the parent.
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

#define SIZE	 (32UL << 20)
#define PAGE	 4096UL
#define NR_KIDS	 3
#define WRITER	 2 /* this child rewrites the first half */
#define PFN_MASK ((1ULL << 55) - 1)

struct ctl {
	volatile int ready, checked, go, bad;
};

/* Frames of [mem, mem + SIZE) in @pid, every page touched already. */
static int frames(pid_t pid, const char *mem, uint64_t *pfn)
{
	char path[64];
	int fd, ok;

	snprintf(path, sizeof(path), "/proc/%d/pagemap", pid);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	ok = pread(fd, pfn, SIZE / PAGE * 8, (uintptr_t)mem / PAGE * 8) == (ssize_t)(SIZE / PAGE * 8);
	close(fd);
	for (size_t i = 0; ok && i < SIZE / PAGE; i++)
		pfn[i] = (pfn[i] >> 63) ? pfn[i] & PFN_MASK : 0;
	return ok ? 0 : -1;
}

/* sum[0], sum[1]: the checksums of the parent's halves */
static void child(struct ctl *ctl, char *mem, int k, const uint32_t *sum)
{
	uint32_t lo = sum[0];

	if (k == WRITER) {
		lo = 7; /* a seed the parent did not use */
		datagen(mem, SIZE / 2, &lo);
	}
	__atomic_add_fetch(&ctl->ready, 1, __ATOMIC_SEQ_CST);
	futex_wake_all(&ctl->ready);
	futex_wait_while(&ctl->go, 0);
	if (datachk(mem, SIZE / 2, &lo) || datachk(mem + SIZE / 2, SIZE / 2, &sum[1]))
		ctl->bad = k + 1;
	__atomic_add_fetch(&ctl->checked, 1, __ATOMIC_SEQ_CST);
	futex_wake_all(&ctl->checked);
	futex_wait_while(&ctl->go, 1);
	memset(mem, 0x5a, PAGE); /* breaks the sharing of one page: ours only */
	/* A dropped page of ours reads zero; the parent's stays. */
	if (madvise(mem + PAGE, PAGE, MADV_DONTNEED) || mem[PAGE] || mem[2 * PAGE - 1])
		_exit(2);
	_exit(0);
}

int main(int argc, char **argv)
{
	const char *mode = getenv("ZDTM_MODE");
	bool lazy = mode && strstr(mode, "lazy");
	uint32_t sum[2] = { 1, 3 }; /* seeds, then the halves' checksums */
	uint64_t *mine, *theirs;
	pid_t kids[NR_KIDS];
	struct ctl *ctl;
	char *mem;

	test_init(argc, argv);
	ctl = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	mem = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	mine = malloc(SIZE / PAGE * 8);
	theirs = malloc(SIZE / PAGE * 8);
	if (ctl == MAP_FAILED || mem == MAP_FAILED || !mine || !theirs)
		return fail_errno("mmap"), 1;
	datagen(mem, SIZE / 2, &sum[0]);
	datagen(mem + SIZE / 2, SIZE / 2, &sum[1]);
	if (frames(getpid(), mem, mine) || !mine[0])
		test_skip("no page frames in /proc/self/pagemap (not root?)");
	for (int k = 0; k < NR_KIDS; k++) {
		kids[k] = fork();
		if (kids[k] < 0)
			return fail_errno("fork"), 1;
		if (kids[k] == 0)
			child(ctl, mem, k, sum);
	}
	while (ctl->ready < NR_KIDS)
		futex_wait_while(&ctl->ready, ctl->ready);
	test_daemon();
	test_waitsig();

	if (datachk(mem, SIZE / 2, &sum[0]) || datachk(mem + SIZE / 2, SIZE / 2, &sum[1]))
		return fail("parent: data mismatch"), 1;
	ctl->go = 1;
	futex_wake_all(&ctl->go);
	while (ctl->checked < NR_KIDS)
		futex_wait_while(&ctl->checked, ctl->checked);
	if (ctl->bad)
		return fail("child %d: data mismatch", ctl->bad - 1), 1;
	if (frames(getpid(), mem, mine))
		return fail_errno("pagemap"), 1;
	for (int k = 0; k < NR_KIDS; k++) {
		size_t lo = 0, hi = 0, n = SIZE / PAGE;

		if (frames(kids[k], mem, theirs))
			return fail_errno("pagemap of %d", kids[k]), 1;
		for (size_t i = 0; i < n; i++)
			*(i < n / 2 ? &lo : &hi) += mine[i] && mine[i] == theirs[i];
		test_msg("child %d: %zu + %zu of %zu pages shared\n", k, lo, hi, n);
		if (lazy ? lo || hi : (lo != (k == WRITER ? 0 : n / 2) || hi != n / 2))
			return fail("child %d: %zu + %zu pages shared (%s)", k, lo, hi,
				    lazy ? "lazy: each task has its own copy" : "sharing lost"), 1;
	}
	ctl->go = 2;
	futex_wake_all(&ctl->go);
	for (int k = 0; k < NR_KIDS; k++) {
		int st;

		if (waitpid(kids[k], &st, 0) != kids[k] || !WIFEXITED(st) || WEXITSTATUS(st))
			return fail("child %d exited with %#x", k, st), 1;
	}
	if (datachk(mem, SIZE / 2, &sum[0]))
		return fail("a child's write showed in the parent"), 1;
	pass();
	return 0;
}
