// SPDX-License-Identifier: GPL-2.0
/*
 * Selftest of TMPFS_IOC_MOVE_TO_ANON (kernel/patches/0005), run in the
 * guest by tmpfs-move.sh:
 *
 *   tmpfs-move checks DIR HUGEDIR   DIR a tmpfs, HUGEDIR a tmpfs huge=always
 *   tmpfs-move fill FILE MIB SEED   write a pattern (for a preserved tmpfs)
 *   tmpfs-move preserved FILE SEED  move a whole file preserved across kexec
 *
 * Prints one PASS or FAIL line per check; exit status 1 if any failed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct tmpfs_move_to_anon {
	uint64_t offset, len, addr, flags, moved;
};
#define TMPFS_IOC_MOVE_TO_ANON _IOWR(0xB9, 0x00, struct tmpfs_move_to_anon)

#ifndef F_SEAL_WRITE
#define F_ADD_SEALS 1033
#define F_SEAL_WRITE 0x0008
#endif

#define PG 4096UL
static int fails;

static void check(int ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void check(int ok, const char *fmt, ...)
{
	va_list ap;

	printf("%s ", ok ? "PASS" : "FAIL");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	fails += !ok;
}

static uint64_t word(uint64_t seed, uint64_t page, uint64_t i)
{
	return (page * 0x9E3779B97F4A7C15ULL) ^ (i * 0xC2B2AE3D27D4EB4FULL) ^ seed;
}

static void pattern(void *p, uint64_t seed, uint64_t first, uint64_t n)
{
	for (uint64_t pg = 0; pg < n; pg++)
		for (uint64_t i = 0; i < PG / 8; i++)
			((uint64_t *)p)[pg * PG / 8 + i] = word(seed, first + pg, i);
}

/* Index of the first page that differs from the pattern, or -1. */
static long differs(const void *p, uint64_t seed, uint64_t first, uint64_t n)
{
	for (uint64_t pg = 0; pg < n; pg++)
		for (uint64_t i = 0; i < PG / 8; i++)
			if (((const uint64_t *)p)[pg * PG / 8 + i] != word(seed, first + pg, i))
				return pg;
	return -1;
}

static int is_zero(const void *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (((const char *)p)[i])
			return 0;
	return 1;
}

/* Writes n pattern pages at page first of fd. */
static int fill(int fd, uint64_t seed, uint64_t first, uint64_t n)
{
	char *buf = malloc(PG * 64);

	for (uint64_t at = 0; at < n; at += 64) {
		uint64_t k = n - at < 64 ? n - at : 64;

		pattern(buf, seed, first + at, k);
		if (pwrite(fd, buf, k * PG, (first + at) * PG) != (ssize_t)(k * PG)) {
			free(buf);
			return -1;
		}
	}
	free(buf);
	return 0;
}

static int move(int fd, uint64_t off, uint64_t len, void *addr, uint64_t *moved)
{
	struct tmpfs_move_to_anon a = { .offset = off, .len = len, .addr = (uintptr_t)addr };
	int ret = ioctl(fd, TMPFS_IOC_MOVE_TO_ANON, &a);

	if (moved)
		*moved = a.moved;
	return ret ? -errno : 0;
}

/* Private anonymous memory between PROT_NONE guards, so it is a VMA of its own. */
static void *anon(size_t len)
{
	char *g = mmap(NULL, len + 2 * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	void *p = g == MAP_FAILED ? MAP_FAILED :
		  mmap(g + PG, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
		       -1, 0);

	if (p == MAP_FAILED) {
		perror("mmap");
		exit(2);
	}
	return p;
}

/* A field (kB) of the smaps entry starting at addr. */
static long smaps_kb(void *addr, const char *field)
{
	char line[512], start[32];
	FILE *f = fopen("/proc/self/smaps", "r");
	int in = 0;
	long v = -1;

	snprintf(start, sizeof(start), "%lx-", (unsigned long)addr);
	while (f && fgets(line, sizeof(line), f)) {
		if (strchr(line, '-') && strchr(line, ' ') && strchr(line, '-') < strchr(line, ' '))
			in = !strncmp(line, start, strlen(start));
		else if (in && !strncmp(line, field, strlen(field)) && line[strlen(field)] == ':')
			v = atol(line + strlen(field) + 1);
	}
	if (f)
		fclose(f);
	return v;
}

/* The /proc/self/maps line of addr, without its range. */
static int maps_line(void *addr, char *out, size_t len)
{
	char line[512], start[32];
	FILE *f = fopen("/proc/self/maps", "r");
	int found = 0;

	snprintf(start, sizeof(start), "%lx-", (unsigned long)addr);
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, start, strlen(start))) {
			snprintf(out, len, "%s", strchr(line, ' ') + 1);
			out[strcspn(out, "\n")] = 0;
			found = 1;
		}
	if (f)
		fclose(f);
	return found;
}

static long meminfo_kb(const char *field)
{
	char line[256];
	FILE *f = fopen("/proc/meminfo", "r");
	long v = -1;

	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, field, strlen(field)) && line[strlen(field)] == ':')
			v = atol(line + strlen(field) + 1);
	if (f)
		fclose(f);
	return v;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int open_new(const char *dir, const char *name)
{
	char path[4096];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0) {
		perror(path);
		exit(2);
	}
	return fd;
}

static void check_moved_memory(int fd, char *p, uint64_t n, uint64_t seed, const char *what)
{
	char maps[512], *buf = malloc(n * PG);
	struct stat st;
	long d;
	pid_t pid;
	int status;

	d = differs(p, seed, 0, n);
	check(d < 0, "%s: moved pages hold the file's data (first bad page %ld)", what, d);
	check(pread(fd, buf, n * PG, 0) == (ssize_t)(n * PG) && is_zero(buf, n * PG),
	      "%s: the file range reads as zeroes afterwards", what);
	check(lseek(fd, 0, SEEK_DATA) < 0 && errno == ENXIO, "%s: the file range is a hole (SEEK_DATA: ENXIO)",
	      what);
	check(!fstat(fd, &st) && st.st_blocks == 0, "%s: the file's blocks given back (st_blocks %lld)", what,
	      (long long)st.st_blocks);
	check(smaps_kb(p, "Anonymous") == (long)(n * PG / 1024) && smaps_kb(p, "Rss") == (long)(n * PG / 1024),
	      "%s: smaps: Anonymous %ld kB, Rss %ld kB (want %lu)", what, smaps_kb(p, "Anonymous"),
	      smaps_kb(p, "Rss"), n * PG / 1024);
	check(maps_line(p, maps, sizeof(maps)) && strstr(maps, "rw-p 00000000 00:00 0"),
	      "%s: maps shows private anonymous memory: '%s'", what, maps);

	/* fork: the child sees the pages, its writes stay its own (COW) */
	pid = fork();
	if (!pid) {
		int ok = differs(p, seed, 0, n) < 0;

		memset(p, 0xff, PG);
		_exit(ok && ((unsigned char *)p)[100] == 0xff ? 0 : 1);
	}
	waitpid(pid, &status, 0);
	check(WIFEXITED(status) && !WEXITSTATUS(status), "%s: a forked child sees the moved pages", what);
	check(differs(p, seed, 0, 1) < 0, "%s: the child's write did not reach the parent (COW)", what);
	/* the parent's own write after fork, then MADV_DONTNEED zero-fills */
	memset(p + PG, 0x5a, PG);
	check(((unsigned char *)p)[PG + 7] == 0x5a && differs(p + 2 * PG, seed, 2, n - 2) < 0,
	      "%s: writes to moved pages work", what);
	check(!madvise(p + PG, 2 * PG, MADV_DONTNEED) && is_zero(p + PG, 2 * PG) &&
	      differs(p + 3 * PG, seed, 3, n - 3) < 0,
	      "%s: MADV_DONTNEED zero-fills moved pages, leaves the others", what);
	free(buf);
}

static int checks(const char *dir, const char *hugedir)
{
	uint64_t n = 64, moved;
	char *p, *q;
	int fd, fd2, ret;
	long shmem0, shmem1;

	/* the basic move */
	fd = open_new(dir, "basic");
	if (fill(fd, 1, 0, n))
		return 2;
	p = anon(n * PG);
	ret = move(fd, 0, n * PG, p, &moved);
	check(!ret && moved == n * PG, "move 64 pages: ret %d moved %lu", ret, moved);
	check_moved_memory(fd, p, n, 1, "4k");
	munmap(p, n * PG);

	/* a range in the middle of the file, to the middle of a VMA */
	if (fill(fd, 2, 0, n))
		return 2;
	p = anon(n * PG);
	ret = move(fd, 8 * PG, 16 * PG, p + 4 * PG, &moved);
	check(!ret && moved == 16 * PG && differs(p + 4 * PG, 2, 8, 16) < 0 && is_zero(p, 4 * PG) &&
	      is_zero(p + 20 * PG, (n - 20) * PG),
	      "file offset 8..24 moved to pages 4..20 of a VMA, the rest of the VMA untouched");
	q = malloc(n * PG);
	check(pread(fd, q, n * PG, 0) == (ssize_t)(n * PG) && differs(q, 2, 0, 8) < 0 &&
	      is_zero(q + 8 * PG, 16 * PG) && differs(q + 24 * PG, 2, 24, n - 24) < 0,
	      "the file keeps the pages outside the range");

	/* partial: data, then a hole */
	ftruncate(fd, 0);
	ftruncate(fd, n * PG);
	fill(fd, 3, 0, 4);
	munmap(p, n * PG);
	p = anon(n * PG);
	ret = move(fd, 0, 8 * PG, p, &moved);
	check(!ret && moved == 4 * PG && differs(p, 3, 0, 4) < 0,
	      "data then a hole: stops at the hole, moved %lu of 8 pages", moved / PG);
	ret = move(fd, 4 * PG, 4 * PG, p + 4 * PG, &moved);
	check(ret == -ENODATA && moved == 0, "a hole: ENODATA (got %d)", ret);

	/* refusals */
	fallocate(fd, 0, 16 * PG, 4 * PG);
	ret = move(fd, 16 * PG, PG, p + 16 * PG, NULL);
	check(ret == -ENODATA, "fallocated, never written: ENODATA (got %d)", ret);
	fill(fd, 4, 32, 8);
	q = mmap(NULL, PG, PROT_READ, MAP_SHARED, fd, 32 * PG);
	check(q != MAP_FAILED && *(volatile char *)q == (char)word(4, 32, 0),
	      "the file's page mapped shared elsewhere");
	ret = move(fd, 32 * PG, PG, p + 32 * PG, NULL);
	check(ret == -EBUSY, "a page mapped elsewhere: EBUSY (got %d)", ret);
	munmap(q, PG);
	p[33 * PG] = 1;
	ret = move(fd, 33 * PG, PG, p + 33 * PG, NULL);
	check(ret == -EEXIST, "a target page already present: EEXIST (got %d)", ret);
	check(move(fd, 34 * PG + 1, PG, p + 34 * PG, NULL) == -EINVAL &&
	      move(fd, 34 * PG, PG, p + 34 * PG + 8, NULL) == -EINVAL &&
	      move(fd, 34 * PG, 100, p + 34 * PG, NULL) == -EINVAL &&
	      move(fd, 34 * PG, 0, p + 34 * PG, NULL) == -EINVAL,
	      "unaligned offset, address or length, or length 0: EINVAL");
	q = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ret = move(fd, 34 * PG, PG, q, NULL);
	check(ret == -EINVAL, "target shared anonymous: EINVAL (got %d)", ret);
	munmap(q, PG);
	fd2 = open_new(dir, "other");
	ftruncate(fd2, PG);
	q = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd2, 0);
	ret = move(fd, 34 * PG, PG, q, NULL);
	check(ret == -EINVAL, "target a private file mapping: EINVAL (got %d)", ret);
	munmap(q, PG);
	close(fd2);
	q = anon(PG);
	munmap(q, PG);
	ret = move(fd, 34 * PG, PG, q, NULL);
	check(ret == -EFAULT, "no VMA at the target: EFAULT (got %d)", ret);
	q = anon(PG);
	mlock(q, PG);
	ret = move(fd, 34 * PG, PG, q, NULL);
	check(ret == -EINVAL, "target mlocked: EINVAL (got %d)", ret);
	munmap(q, PG);
	{
		char path[4096];

		snprintf(path, sizeof(path), "%s/basic", dir);
		fd2 = open(path, O_RDONLY);
		ret = move(fd2, 34 * PG, PG, p + 34 * PG, NULL);
		check(ret == -EBADF, "file open read-only: EBADF (got %d)", ret);
		close(fd2);
	}
	fd2 = open("/proc/self/status", O_RDONLY);
	ret = move(fd2, 0, PG, p + 34 * PG, NULL);
	check(ret == -ENOTTY, "a file not on tmpfs: ENOTTY (got %d)", ret);
	close(fd2);
	fd2 = memfd_create("sealed", MFD_ALLOW_SEALING);
	fill(fd2, 5, 0, 1);
	ret = fcntl(fd2, F_ADD_SEALS, F_SEAL_WRITE) ? -errno : move(fd2, 0, PG, p + 34 * PG, NULL);
	check(ret == -EPERM, "a memfd sealed against writes: EPERM (got %d)", ret);
	close(fd2);
	q = malloc(8 * PG);
	check(pread(fd, q, 8 * PG, 32 * PG) == 8 * PG &&
	      differs(q, 4, 32, 8) < 0 && is_zero(p + 34 * PG, 6 * PG),
	      "after the refusals the file's pages and the target are as they were");
	free(q);
	munmap(p, n * PG);
	close(fd);

	/* a memfd is tmpfs too */
	fd = memfd_create("plain", 0);
	fill(fd, 6, 0, 16);
	p = anon(16 * PG);
	ret = move(fd, 0, 16 * PG, p, &moved);
	check(!ret && moved == 16 * PG && differs(p, 6, 0, 16) < 0, "a memfd's pages move too");
	munmap(p, 16 * PG);
	close(fd);

	/* huge folios are split */
	fd = open_new(hugedir, "huge");
	fill(fd, 7, 0, 1024);
	p = anon(1024 * PG);
	ret = move(fd, 512 * PG, 512 * PG, p, &moved);
	check(!ret && moved == 512 * PG && differs(p, 7, 512, 512) < 0,
	      "huge=always: a 2 MiB folio split and moved (moved %lu pages)", moved / PG);
	ret = move(fd, 4 * PG, 8 * PG, p + 600 * PG, &moved);
	check(!ret && moved == 8 * PG && differs(p + 600 * PG, 7, 4, 8) < 0,
	      "huge=always: 8 pages from inside a huge folio");
	munmap(p, 1024 * PG);
	close(fd);

	/* memory: the data is in memory once, Shmem goes down as it moves */
	n = 16384;	/* 64 MiB */
	fd = open_new(dir, "big");
	fill(fd, 8, 0, n);
	p = anon(n * PG);
	shmem0 = meminfo_kb("Shmem");
	{
		double t0 = now(), t1, t2;

		ret = move(fd, 0, n * PG, p, &moved);
		t1 = now();
		q = anon(n * PG);
		shmem1 = meminfo_kb("Shmem");
		check(!ret && moved == n * PG && differs(p, 8, 0, n) < 0, "64 MiB moved, contents intact");
		check(shmem0 - shmem1 >= 64 * 1024 - 1024,
		      "Shmem down by the moved 64 MiB: %ld -> %ld kB", shmem0, shmem1);
		/* for comparison only: copying the same amount back in */
		if (fill(fd, 8, 0, n) == 0) {
			t2 = now();
			pread(fd, q, n * PG, 0);
			printf("info: move of 64 MiB %.1f ms, pread of 64 MiB %.1f ms\n",
			       (t1 - t0) * 1e3, (now() - t2) * 1e3);
		}
		munmap(q, n * PG);
	}
	munmap(p, n * PG);
	close(fd);
	return fails ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[1], "checks"))
		return checks(argv[2], argv[3]);
	if (argc == 5 && !strcmp(argv[1], "fill")) {
		int fd = open(argv[2], O_RDWR | O_CREAT | O_TRUNC, 0600);

		return fd < 0 || fill(fd, strtoull(argv[4], NULL, 0), 0,
				      strtoull(argv[3], NULL, 0) * 256) ? 2 : 0;
	}
	if (argc == 4 && !strcmp(argv[1], "preserved")) {
		int fd = open(argv[2], O_RDWR);
		struct stat st;
		uint64_t moved;
		char *p;
		int ret;
		double t0;

		if (fd < 0 || fstat(fd, &st)) {
			perror(argv[2]);
			return 2;
		}
		p = anon(st.st_size);
		t0 = now();
		ret = move(fd, 0, st.st_size, p, &moved);
		printf("info: moved %lu of %lld bytes in %.1f ms\n", moved, (long long)st.st_size,
		       (now() - t0) * 1e3);
		check(!ret && moved == (uint64_t)st.st_size, "preserved file: all its pages moved (%d)", ret);
		check_moved_memory(fd, p, st.st_size / PG, strtoull(argv[3], NULL, 0), "preserved");
		return fails ? 1 : 0;
	}
	fprintf(stderr, "usage: see the head of %s\n", __FILE__);
	return 2;
}
