// SPDX-License-Identifier: MIT
/*
 * Unit test of dedup (src/mem/dedup.h) against fixture chains: after
 * dedup_image() (or dedup_run() down the whole chain) the pages a newer
 * image saves again must read as zeros in the parent that held them, every
 * other page must be untouched, every parent entry's checksum must match
 * its new contents, the files keep their size, and the newest image still
 * loads as a chain with each page from the layer that holds it.
 */
#define LOG_PREFIX "test: "
#include <sys/mman.h>

#include "image/sums.h"
#include "mem/dedup.h"
#include "mem/pagemap_chain.h"
#include "mem/vma.h"
#include "unit.h"

#define PID 200
#define PG  PAGE_SIZE
#define P   PE_PRESENT
#define R   PE_PARENT
#define A0  0x400000ull
#define C0  0x410000ull

enum how {
	H_IMAGE,	 /* dedup_image(DIR) */
	H_CHAIN,	 /* dedup_run(DIR): each image in turn, newest first */
	H_SUMS,		 /* dedup_image, the parent has amber.sums */
	H_YOUNGER,	 /* the parent has no pagemap of this task */
	H_NO_PAGES1,	 /* the parent's pages file is missing */
};

struct range {
	uint64_t start, end;
};

static const struct dedup_case {
	const char *name;
	struct unit_ent layers[3][5];
	enum how how;
	int want;
	struct range zero[3][3]; /* per layer: the pages punched out (end 0 ends) */
} cases[] = {
	{"pages saved again are punched from the parent",
	 {{{A0, 2, P}}, {{A0, 4, P}}},
	 H_IMAGE, 0,
	 {{}, {{A0, A0 + 2 * PG}}}},
	{"pages left in the parent are kept",
	 {{{A0, 4, R}}, {{A0, 4, P}}},
	 H_IMAGE, 0,
	 {}},
	{"only the pages saved again, around a PE_PARENT page",
	 {{{A0, 1, P}, {A0 + PG, 1, R}, {A0 + 2 * PG, 2, P}}, {{A0, 4, P}, {C0, 2, P}}},
	 H_IMAGE, 0,
	 {{}, {{A0, A0 + PG}, {A0 + 2 * PG, A0 + 4 * PG}}}},
	{"punched where the data is, through a PE_PARENT layer",
	 {{{A0, 1, P}}, {{A0, 4, R}, {C0, 1, P}}, {{A0, 4, P}}},
	 H_IMAGE, 0,
	 {{}, {}, {{A0, A0 + PG}}}},
	{"the whole chain, newest first",
	 {{{A0, 1, P}}, {{A0, 2, P}}, {{A0, 3, P}}},
	 H_CHAIN, 0,
	 {{}, {{A0, A0 + PG}}, {{A0, A0 + 2 * PG}}}},
	{"the parent's amber.sums is rewritten",
	 {{{A0, 2, P}}, {{A0, 4, P}}},
	 H_SUMS, 0,
	 {{}, {{A0, A0 + 2 * PG}}}},
	{"a task younger than the parent",
	 {{{A0, 2, P}}, {{A0, 4, P}}},
	 H_YOUNGER, 0,
	 {}},
	{"an image without a parent",
	 {{{A0, 2, P}}},
	 H_IMAGE, 0,
	 {}},
	{"a parent without its pages file refused",
	 {{{A0, 2, P}}, {{A0, 4, P}}},
	 H_NO_PAGES1, -ENOENT},
	{"a parent with overlapping entries refused",
	 {{{A0, 2, P}}, {{A0, 4, P}, {A0 + PG, 1, P}}},
	 H_IMAGE, -EINVAL},
};

static int nr_layers(const struct dedup_case *c)
{
	int n = 0;

	while (n < 3 && !unit_ent_end(&c->layers[n][0]))
		n++;
	return n;
}

/* The dirfd of layer @k under @top (0: @top itself, dup'ed). */
static int layer_dir(int top, int k)
{
	int fd = dup(top);

	for (int i = 0; i < k && fd >= 0; i++) {
		int up = openat(fd, "parent", O_DIRECTORY | O_RDONLY | O_CLOEXEC);

		close(fd);
		fd = up;
	}
	return fd;
}

static bool in_ranges(const struct range *r, uint64_t va)
{
	for (int i = 0; i < 3 && r[i].end; i++)
		if (va >= r[i].start && va < r[i].end)
			return true;
	return false;
}

static bool is_zero(const uint8_t *p)
{
	for (size_t i = 0; i < PG; i++)
		if (p[i])
			return false;
	return true;
}

/* Every PE_PRESENT page of layer @k: zero if punched, else its data; checksums right. */
static void check_layer(int top, int k, const struct range *zero, char *why, size_t len)
{
	int fd = layer_dir(top, k);
	struct pm_layer l;
	int ret = fd < 0 ? -errno : pm_layer_load(&l, fd, IMG_PAGEMAP, PID, NULL);

	if (ret) {
		snprintf(why, len, "layer %d no longer loads: %d", k, ret);
		close(fd);
		return;
	}
	for (int i = 0; i < l.nr && !why[0]; i++) {
		const struct pm_ent *e = &l.ents[i];
		size_t n = (size_t)e->nr_pages * PG;
		uint8_t *buf;

		if (e->flags != P)
			continue;
		buf = malloc(n);
		if (!buf || pread_full(l.pages_fd, buf, n, e->off)) {
			snprintf(why, len, "layer %d: can't read back", k);
			free(buf);
			break;
		}
		for (uint32_t p = 0; p < e->nr_pages && !why[0]; p++) {
			uint64_t va = e->vaddr + p * PG;
			bool z = in_ranges(zero, va);

			if (z ? !is_zero(buf + p * PG) : !unit_page_is(buf + p * PG, k + 1, va))
				snprintf(why, len, "layer %d page %#llx: %s", k,
					 (unsigned long long)va,
					 z ? "not punched" : "lost its data");
		}
		/* a rewritten entry gets version 2, whatever it had */
		if (!why[0] && (e->csum_ver != AMBER_CSUM_V2 ||
				amber_csum2(buf, n, e->vaddr) != e->csum))
			snprintf(why, len, "layer %d entry %#llx: checksum not redone", k,
				 (unsigned long long)e->vaddr);
		free(buf);
	}
	pm_layer_free(&l);
	close(fd);
}

/* The newest image still loads as a chain, each page from its holder. */
static void check_chain(int top, char *why, size_t len)
{
	VmaEntry a = VMA_ENTRY__INIT, c = VMA_ENTRY__INIT, *vmas[] = {&a, &c};
	MmEntry mm = MM_ENTRY__INIT;
	struct pm_chain pc;
	int ret;

	a.start = A0;
	a.end = A0 + 16 * PG;
	c.start = C0;
	c.end = C0 + 16 * PG;
	a.status = c.status = VMA_AREA_REGULAR | VMA_ANON_PRIVATE;
	a.prot = c.prot = PROT_READ | PROT_WRITE;
	a.flags = c.flags = MAP_PRIVATE | MAP_ANONYMOUS;
	mm.n_vmas = 2;
	mm.vmas = vmas;
	ret = pm_chain_load(&pc, top, PID, &mm, NULL);
	if (ret) {
		snprintf(why, len, "the chain no longer loads: %d", ret);
		return;
	}
	for (int i = 0; i < pc.nr_lazy && !why[0]; i++) {
		const struct rst_pages *r = &pc.lazy[i];
		uint8_t page[PAGE_SIZE];

		for (uint32_t p = 0; p < r->nr_pages && !why[0]; p++)
			if (pread_full(pc.layers[r->layer].pages_fd, page, PG, r->off + p * PG) ||
			    !unit_page_is(page, r->layer + 1, r->vaddr + p * PG))
				snprintf(why, len, "restore would read a wrong page at %#llx",
					 (unsigned long long)r->vaddr + p * PG);
	}
	pm_chain_free(&pc);
}

static off_t file_size(int dirfd, const char *name)
{
	struct stat st;

	return fstatat(dirfd, name, &st, 0) ? -1 : st.st_size;
}

static void run_case(int root, int idx, const struct dedup_case *c)
{
	char name[16], path[96], why[256] = "";
	off_t sizes[3] = {0};
	int top, fd, ret;

	snprintf(name, sizeof(name), "c%d", idx);
	top = unit_subdir(root, name);
	fd = dup(top);
	for (int k = 0; k < nr_layers(c) && fd >= 0; k++) {
		int pid = c->how == H_YOUNGER && k ? PID + 1 : PID;

		if (unit_write_pagemap(fd, IMG_PAGEMAP, pid, k + 1, c->layers[k], k + 1))
			snprintf(why, sizeof(why), "can't write layer %d", k);
		if (c->how == H_SUMS && k == 1 && img_sums_write(fd))
			snprintf(why, sizeof(why), "can't write amber.sums");
		if (c->how == H_NO_PAGES1 && k == 1)
			unlinkat(fd, "pages-2.img", 0);
		snprintf(path, sizeof(path), "pages-%d.img", k + 1);
		sizes[k] = file_size(fd, path);
		if (k + 1 < nr_layers(c)) {
			int up = unit_subdir(fd, "parent");

			close(fd);
			fd = up;
		}
	}
	close(fd);
	if (!why[0]) {
		if (c->how == H_CHAIN) {
			snprintf(path, sizeof(path), "/proc/self/fd/%d", top);
			ret = dedup_run(path);
		} else {
			ret = dedup_image(top);
		}
		UNIT_EXPECT(why, ret == c->want, "returned %d (%s), want %d", ret, strerror(-ret),
			    c->want);
	}
	for (int k = 0; !c->want && !why[0] && k < nr_layers(c); k++) {
		fd = layer_dir(top, k);
		snprintf(path, sizeof(path), "pages-%d.img", k + 1);
		UNIT_EXPECT(why, file_size(fd, path) == sizes[k], "layer %d changed size", k);
		if (c->how != H_YOUNGER || !k)
			check_layer(top, k, c->zero[k], why, sizeof(why));
		if (c->how == H_SUMS && k == 1)
			UNIT_EXPECT(why, img_sums_check(fd) == 0, "parent fails its amber.sums");
		/* no temporary directory left behind */
		snprintf(path, sizeof(path), ".dedup-%d", getpid());
		UNIT_EXPECT(why, faccessat(fd, path, F_OK, 0) && errno == ENOENT,
			    "%s left in layer %d", path, k);
		close(fd);
	}
	if (!c->want && !why[0] && c->how != H_YOUNGER)
		check_chain(top, why, sizeof(why));
	close(top);
	unit_check(c->name, !why[0], "%s", why);
}

int main(void)
{
	char root[64];
	int rootfd;

	unit_init();
	rootfd = unit_tmpdir(root, "dedup");
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		run_case(rootfd, i, &cases[i]);
	unit_check("amber_dedup of a missing directory", dedup_run("/nonexistent/amber") ==
		   -ENOENT, "not -ENOENT");
	close(rootfd);
	unit_rmrf(root);
	return unit_done("test_dedup");
}
