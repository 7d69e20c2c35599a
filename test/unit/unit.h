/* SPDX-License-Identifier: MIT */
#ifndef AMBER_TEST_UNIT_H
#define AMBER_TEST_UNIT_H

/*
 * Tiny helpers shared by the table-driven unit tests: each case prints
 * "ok NAME" or "FAIL NAME: why", and unit_done() makes the exit status
 * non-zero if any case failed. Fixture images are written with amber's
 * own image writer into a temporary directory.
 *
 * UNIT_LOG=N in the environment sets amber's log level (default 0: the
 * refusals a test provokes on purpose stay quiet; 4 shows everything).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/csum.h"
#include "base/log.h"
#include "base/util.h"
#include "image/image.h"
#include "image/magic.h"
#include "pagemap.pb-c.h"

static int unit_nfail, unit_nok;

/* One case's verdict: @why (printf format) is printed only on failure. */
__attribute__((format(printf, 3, 4), unused))
static bool unit_check(const char *name, bool ok, const char *why, ...)
{
	va_list ap;

	if (ok) {
		printf("ok %s\n", name);
		unit_nok++;
		return true;
	}
	unit_nfail++;
	printf("FAIL %s: ", name);
	va_start(ap, why);
	vprintf(why, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	return false;
}

/* Within one case: records the first reason it fails, into @why. */
#define UNIT_EXPECT(why, cond, ...)                                            \
	do {                                                                   \
		if (!(cond) && !(why)[0])                                      \
			snprintf(why, sizeof(why), __VA_ARGS__);               \
	} while (0)

__attribute__((unused)) static void unit_init(void)
{
	const char *l = getenv("UNIT_LOG");

	log_init(NULL, l ? atoi(l) : 0, 0);
	setvbuf(stdout, NULL, _IOLBF, 0);
}

__attribute__((unused)) static int unit_done(const char *test)
{
	printf("%s: %d ok, %d failed\n", test, unit_nok, unit_nfail);
	return unit_nfail ? 1 : 0;
}

/* A fresh temporary directory: its path in @path (>= 64 bytes), its fd returned. */
__attribute__((unused)) static int unit_tmpdir(char *path, const char *tag)
{
	snprintf(path, 64, "/tmp/amber-unit-%s-XXXXXX", tag);
	if (!mkdtemp(path)) {
		perror("mkdtemp");
		exit(2);
	}
	return open(path, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
}

__attribute__((unused)) static void unit_rmrf(const char *path)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
	if (system(cmd))
		fprintf(stderr, "can't remove %s\n", path);
}

/* A subdirectory (created) of @dirfd, opened. */
__attribute__((unused)) static int unit_subdir(int dirfd, const char *name)
{
	if (mkdirat(dirfd, name, 0700) && errno != EEXIST)
		return -1;
	return openat(dirfd, name, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
}

/*
 * Fixture page data: every 8-byte word says which layer (@seed), page
 * address and word it is, so a test can tell where a restored page came from.
 */
static inline uint64_t unit_word(uint64_t seed, uint64_t vaddr, size_t i)
{
	return (seed << 48) ^ vaddr ^ (i * 0x9e3779b97f4a7c15ULL);
}

__attribute__((unused)) static void unit_fill_page(void *page, uint64_t seed, uint64_t vaddr)
{
	uint64_t *w = page;

	for (size_t i = 0; i < PAGE_SIZE / 8; i++)
		w[i] = unit_word(seed, vaddr, i);
}

/* Whether @page holds the fixture data of @seed at @vaddr. */
__attribute__((unused)) static bool unit_page_is(const void *page, uint64_t seed, uint64_t vaddr)
{
	const uint64_t *w = page;

	for (size_t i = 0; i < PAGE_SIZE / 8; i++)
		if (w[i] != unit_word(seed, vaddr, i))
			return false;
	return true;
}

/* One fixture pagemap entry; a list of them ends at an all-zero one. */
struct unit_ent {
	uint64_t va;
	uint32_t nr;
	uint32_t flags; /* PE_PRESENT, PE_PARENT, ... written as is */
};

/* In unit_ent.flags: written as CRIU 4.2 does, count in field 5, no checksum */
#define UNIT_CRIU (1u << 31)
/* ... written as amber builds before amber_csum2 did: the sum in field 1000 */
#define UNIT_OLD_CSUM (1u << 30)

static inline bool unit_ent_end(const struct unit_ent *e)
{
	return !e->va && !e->nr && !e->flags;
}

/*
 * Writes a pagemap image (@type IMG_PAGEMAP or IMG_SHMEM_PAGEMAP, @id)
 * naming pages-@pages_id.img and that pages file: the PE_PRESENT entries'
 * pages are unit_fill_page(@seed) data, each entry with its amber checksum
 * as the dump writes it. 0 or -1.
 */
__attribute__((unused)) static int unit_write_pagemap(int dirfd, enum img_type type,
						      unsigned long id, uint32_t pages_id,
						      const struct unit_ent *ents, uint64_t seed)
{
	PagemapHead ph = PAGEMAP_HEAD__INIT;
	struct img *pm = img_open(dirfd, type, true, id);
	struct img *pg = img_open(dirfd, IMG_PAGES, true, pages_id);
	int ret = pm && pg ? 0 : -1;

	ph.pages_id = pages_id;
	if (!ret)
		ret = img_write_msg(pm, &ph.base);
	for (const struct unit_ent *e = ents; !ret && !unit_ent_end(e); e++) {
		PagemapEntry pe = PAGEMAP_ENTRY__INIT;
		size_t len = (size_t)e->nr * PAGE_SIZE;
		uint8_t *buf = NULL;

		pe.vaddr = e->va;
		pe.nr_pages = e->flags & UNIT_CRIU ? 0 : e->nr;
		pe.has_nr_pages_u64 = e->flags & UNIT_CRIU;
		pe.nr_pages_u64 = e->nr;
		pe.has_flags = true;
		pe.flags = e->flags & ~(UNIT_CRIU | UNIT_OLD_CSUM);
		if (e->flags & PE_PRESENT) {
			buf = malloc(len);
			if (!buf)
				return -1;
			for (uint32_t p = 0; p < e->nr; p++)
				unit_fill_page(buf + p * PAGE_SIZE, seed, e->va + p * PAGE_SIZE);
			if (e->flags & UNIT_OLD_CSUM) {
				pe.has_amber_csum = true;
				pe.amber_csum = amber_csum(buf, len, e->va);
			} else {
				pe.has_amber_csum2 = !(e->flags & UNIT_CRIU);
				pe.amber_csum2 = amber_csum2(buf, len, e->va);
			}
			ret = img_write_raw(pg, buf, len);
			free(buf);
		}
		if (!ret)
			ret = img_write_msg(pm, &pe.base);
	}
	if (pm && img_close(pm))
		ret = -1;
	if (pg && img_close(pg))
		ret = -1;
	return ret;
}

/* Writes @len bytes of @text into @name under @dirfd. 0 or -1. */
__attribute__((unused)) static int unit_write_file(int dirfd, const char *name, const void *text,
						   size_t len)
{
	int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int ret;

	if (fd < 0)
		return -1;
	ret = write_full(fd, text, len) ? -1 : 0;
	close(fd);
	return ret;
}

/* XORs byte @off of @name under @dirfd with 0xff. 0 or -1. */
__attribute__((unused)) static int unit_flip_byte(int dirfd, const char *name, off_t off)
{
	int fd = openat(dirfd, name, O_RDWR | O_CLOEXEC);
	uint8_t b;
	int ret = -1;

	if (fd < 0)
		return -1;
	if (pread(fd, &b, 1, off) == 1) {
		b ^= 0xff;
		ret = pwrite(fd, &b, 1, off) == 1 ? 0 : -1;
	}
	close(fd);
	return ret;
}

#endif
