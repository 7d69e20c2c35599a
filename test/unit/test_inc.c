// SPDX-License-Identifier: MIT
/*
 * Unit test of incremental plans (src/mem/inc.h) without a live task: the
 * tracker reads a fixture /proc/PID/pagemap (a sparse file of PMEs, the
 * soft-dirty bit saying "written"; the read path a kernel without
 * PAGEMAP_SCAN takes), the parent image is written with the image writer,
 * and the PE_PRESENT / PE_PARENT runs inc_plan_build() plans are compared
 * with the table. Then inc_parent_load() on good, reset, partial and
 * broken parents, and inc_mark_chain_reset() down a chain.
 */
#define LOG_PREFIX "test: "
#include <ctype.h>
#include <sys/mman.h>

#include "base/uapi.h"
#include "mem/inc.h"
#include "mem/vma.h"
#include "mem/xfer.h"
#include "unit.h"

#define PID	 300
#define PG	 PAGE_SIZE
#define P	 PE_PRESENT
#define R	 PE_PARENT
#define A0	 0x400000ull
#define ZERO_PFN 0x777
#define ANON	 (VMA_AREA_REGULAR | VMA_ANON_PRIVATE)
#define RW	 (PROT_READ | PROT_WRITE)
#define PRIV	 (MAP_PRIVATE | MAP_ANONYMOUS)

/*
 * A VMA and its pages, one letter a page, a count before a letter
 * repeating it: '.' not present, 'c' present and clean, 'd' present and
 * written (soft-dirty), 's'/'S' swapped clean/written, 'z' the zero page,
 * 'f' a page-cache page. The parent's VMAs use the same struct, pages unused.
 */
struct fvma {
	uint64_t start;
	const char *pages;
	uint32_t status, flags, prot;
	uint64_t pgoff;
};

enum parent_kind {
	PA_NONE,    /* no parent directory */
	PA_IMAGE,   /* mm-PID.img + pagemap-PID.img */
	PA_SENT,    /* mm-PID.img + sent-pagemap-PID.img (pages on a page server) */
	PA_RESET,   /* PA_IMAGE, marked by a failed dump */
	PA_NO_TASK, /* a parent image without this task */
};

#define RUN(va, n, f) {(va), (n), (f)}

static const struct inc_case {
	const char *name;
	struct fvma vmas[3];
	enum parent_kind parent;
	struct fvma pvmas[3];
	struct unit_ent pents[4];
	bool fresh;
	struct inc_run want[6]; /* ends at nr_pages 0 */
} cases[] = {
	{"no parent: every wanted page is saved",
	 {{A0, "2c2d2.c", ANON, PRIV, RW}}, PA_NONE, {}, {}, false,
	 {RUN(A0, 4, P), RUN(A0 + 6 * PG, 1, P)}},
	{"clean pages the parent holds stay there",
	 {{A0, "2c2d2.2c", ANON, PRIV, RW}}, PA_IMAGE,
	 {{A0, "8.", ANON, PRIV, RW}}, {{A0, 8, P}}, false,
	 {RUN(A0, 2, R), RUN(A0 + 2 * PG, 2, P), RUN(A0 + 6 * PG, 2, R)}},
	{"clean pages the parent lacks are saved",
	 {{A0, "3c", ANON, PRIV, RW}}, PA_IMAGE,
	 {{A0, "3.", ANON, PRIV, RW}}, {{A0 + PG, 1, P}}, false,
	 {RUN(A0, 1, P), RUN(A0 + PG, 1, R), RUN(A0 + 2 * PG, 1, P)}},
	{"the parent's own PE_PARENT entries count as held",
	 {{A0, "2c", ANON, PRIV, RW}}, PA_IMAGE,
	 {{A0, "2.", ANON, PRIV, RW}}, {{A0, 2, R}}, false,
	 {RUN(A0, 2, R)}},
	{"swapped pages follow the same rule",
	 {{A0, "sS", ANON, PRIV, RW}}, PA_IMAGE,
	 {{A0, "2.", ANON, PRIV, RW}}, {{A0, 2, P}}, false,
	 {RUN(A0, 1, R), RUN(A0 + PG, 1, P)}},
	{"the zero page and page-cache pages are not wanted",
	 {{A0, "zf.d", ANON, PRIV, RW}}, PA_NONE, {}, {}, false,
	 {RUN(A0 + 3 * PG, 1, P)}},
	{"a VMA that grew saves every page",
	 {{A0, "2c", ANON, PRIV, RW}}, PA_IMAGE,
	 {{A0, "1.", ANON, PRIV, RW}}, {{A0, 1, P}}, false,
	 {RUN(A0, 2, P)}},
	{"a VMA with other protections saves every page",
	 {{A0, "2c", ANON, PRIV, RW}}, PA_IMAGE,
	 {{A0, "2.", ANON, PRIV, PROT_READ}}, {{A0, 2, P}}, false,
	 {RUN(A0, 2, P)}},
	{"a VMA with another offset saves every page",
	 {{A0, "2c", ANON, PRIV, RW, 0}}, PA_IMAGE,
	 {{A0, "2.", ANON, PRIV, RW, 4}}, {{A0, 2, P}}, false,
	 {RUN(A0, 2, P)}},
	{"a VMA of another kind saves every page",
	 {{A0, "2c", ANON, PRIV, RW}}, PA_IMAGE,
	 {{A0, "2.", VMA_AREA_REGULAR | VMA_FILE_PRIVATE, MAP_PRIVATE, RW}}, {{A0, 2, P}}, false,
	 {RUN(A0, 2, P)}},
	{"a VMA new since the parent saves every page",
	 {{A0, "2c", ANON, PRIV, RW}}, PA_IMAGE,
	 {{A0 + 16 * PG, "2.", ANON, PRIV, RW}}, {{A0 + 16 * PG, 2, P}}, false,
	 {RUN(A0, 2, P)}},
	{"shared VMAs are not in the plan",
	 {{A0, "2d", VMA_AREA_REGULAR | VMA_ANON_SHARED, MAP_SHARED | MAP_ANONYMOUS, RW}},
	 PA_NONE, {}, {}, false,
	 {}},
	{"hugetlb VMAs: every present page as written",
	 {{A0, "2c", ANON, PRIV | VMA_MAP_HUGETLB, RW}}, PA_IMAGE,
	 {{A0, "2.", ANON, PRIV | VMA_MAP_HUGETLB, RW}}, {{A0, 2, P}}, false,
	 {RUN(A0, 2, P)}},
	{"a freshly armed tracker: every page as written",
	 {{A0, "2c", ANON, PRIV, RW}}, PA_IMAGE,
	 {{A0, "2.", ANON, PRIV, RW}}, {{A0, 2, P}}, true,
	 {RUN(A0, 2, P)}},
	{"saved runs split at XFER_ENTRY_PAGES",
	 {{A0, "130d", ANON, PRIV, RW}}, PA_NONE, {}, {}, false,
	 {RUN(A0, 64, P), RUN(A0 + 64 * PG, 64, P), RUN(A0 + 128 * PG, 2, P)}},
	{"parent runs are not split",
	 {{A0, "130c", ANON, PRIV, RW}}, PA_IMAGE,
	 {{A0, "130.", ANON, PRIV, RW}}, {{A0, 130, P}}, false,
	 {RUN(A0, 130, R)}},
	{"runs never span two VMAs",
	 {{A0, "2d2c", ANON, PRIV, RW}, {A0 + 4 * PG, "2d2c", ANON, PRIV, RW}}, PA_IMAGE,
	 {{A0, "4.", ANON, PRIV, RW}, {A0 + 4 * PG, "4.", ANON, PRIV, RW}}, {{A0, 8, P}}, false,
	 {RUN(A0, 2, P), RUN(A0 + 2 * PG, 2, R), RUN(A0 + 4 * PG, 2, P), RUN(A0 + 6 * PG, 2, R)}},
	{"a parent whose pages went to a page server",
	 {{A0, "cd", ANON, PRIV, RW}}, PA_SENT,
	 {{A0, "2.", ANON, PRIV, RW}}, {{A0, 2, P}}, false,
	 {RUN(A0, 1, R), RUN(A0 + PG, 1, P)}},
	{"a parent marked by a failed dump is not trusted",
	 {{A0, "2c", ANON, PRIV, RW}}, PA_RESET,
	 {{A0, "2.", ANON, PRIV, RW}}, {{A0, 2, P}}, false,
	 {RUN(A0, 2, P)}},
	{"a task born since the parent",
	 {{A0, "2c", ANON, PRIV, RW}}, PA_NO_TASK,
	 {{A0, "2.", ANON, PRIV, RW}}, {{A0, 2, P}}, false,
	 {RUN(A0, 2, P)}},
};

/* "2c2d." -> "ccdd."; at most @size - 1 pages. */
static size_t expand(const char *s, char *out, size_t size)
{
	size_t n = 0;

	while (*s) {
		unsigned long k = 1;

		if (isdigit((unsigned char)*s))
			k = strtoul(s, (char **)&s, 10);
		while (k-- && n + 1 < size)
			out[n++] = *s;
		s++;
	}
	out[n] = 0;
	return n;
}

static uint64_t pme(char c)
{
	switch (c) {
	case 'c': return PME_PRESENT | 0x1234;
	case 'd': return PME_PRESENT | PME_SOFT_DIRTY | 0x1234;
	case 's': return PME_SWAP | 0x55;
	case 'S': return PME_SWAP | PME_SOFT_DIRTY | 0x55;
	case 'z': return PME_PRESENT | PME_SOFT_DIRTY | ZERO_PFN;
	case 'f': return PME_PRESENT | PME_FILE | PME_SOFT_DIRTY | 0x1234;
	default: return 0;
	}
}

static void vma_fill(VmaEntry *v, const struct fvma *f)
{
	char pages[256];

	v->start = f->start;
	v->end = f->start + expand(f->pages, pages, sizeof(pages)) * PG;
	v->pgoff = f->pgoff;
	v->prot = f->prot;
	v->flags = f->flags;
	v->status = f->status;
	v->fd = -1;
}

static int nr_fvmas(const struct fvma *f)
{
	int n = 0;

	while (n < 3 && f[n].pages)
		n++;
	return n;
}

/* The parent directory of a case; -1 for none. */
static int write_parent(int casefd, const struct inc_case *c, int track_fd)
{
	VmaEntry v[3], *vp[3];
	MmEntry mm = MM_ENTRY__INIT;
	int fd, n = nr_fvmas(c->pvmas);

	if (c->parent == PA_NONE)
		return -1;
	fd = unit_subdir(casefd, "parent");
	for (int i = 0; i < n; i++) {
		vma_entry__init(&v[i]);
		vma_fill(&v[i], &c->pvmas[i]);
		vp[i] = &v[i];
	}
	mm.n_vmas = n;
	mm.vmas = vp;
	if (track_fd >= 0) {
		mm.has_amber_track_fd = true;
		mm.amber_track_fd = track_fd;
	}
	if (c->parent == PA_NO_TASK)
		return fd;
	if (img_write_one(fd, IMG_MM, PID, &mm.base) ||
	    unit_write_pagemap(fd, c->parent == PA_SENT ? IMG_SENT_PAGEMAP : IMG_PAGEMAP, PID,
			       c->parent == PA_SENT ? 0 : 1, c->pents, 1))
		return -2;
	if (c->parent == PA_RESET && unit_write_file(fd, INC_RESET_MARK, "", 0))
		return -2;
	return fd;
}

static void run_case(int root, int idx, const struct inc_case *c)
{
	struct tracker tr = {.kind = TRACK_SOFT_DIRTY, .pagemap_scan = false, .zero_pfn = ZERO_PFN};
	struct track_task tt = {.pid = getpid(), .uffd = -1, .target_fd = -1, .fresh = c->fresh};
	VmaEntry v[3], *vp[3];
	struct inc_parent parent;
	struct inc_plan plan;
	char name[16], why[256] = "";
	int casefd, pfd, pmfd, n = nr_fvmas(c->vmas), nw = 0, ret;
	uint64_t present = 0, held = 0;

	snprintf(name, sizeof(name), "c%d", idx);
	casefd = unit_subdir(root, name);
	pmfd = openat(casefd, "pagemap", O_RDWR | O_CREAT | O_TRUNC, 0600);
	for (int i = 0; i < n; i++) {
		char pages[256];
		size_t np = expand(c->vmas[i].pages, pages, sizeof(pages));

		vma_entry__init(&v[i]);
		vma_fill(&v[i], &c->vmas[i]);
		vp[i] = &v[i];
		for (size_t p = 0; p < np; p++) {
			uint64_t e = pme(pages[p]);

			if (pwrite(pmfd, &e, 8, (c->vmas[i].start / PG + p) * 8) != 8)
				snprintf(why, sizeof(why), "can't write the fixture pagemap");
		}
	}
	pfd = write_parent(casefd, c, -1);
	if (pfd == -2)
		snprintf(why, sizeof(why), "can't write the parent image");
	ret = inc_parent_load(pfd, PID, &parent);
	UNIT_EXPECT(why, !ret, "inc_parent_load: %d", ret);
	UNIT_EXPECT(why, parent.have == (c->parent == PA_IMAGE || c->parent == PA_SENT),
		    "parent.have %d", parent.have);
	if (!why[0]) {
		ret = inc_plan_build(&plan, &tr, &tt, &parent, vp, n, pmfd);
		UNIT_EXPECT(why, !ret, "inc_plan_build: %d", ret);
		/* soft-dirty moves on only at clear_refs (track_task_rearm) */
		UNIT_EXPECT(why, !tt.rearmed, "a soft-dirty scan marked the task as re-armed");
		while (nw < 6 && c->want[nw].nr_pages)
			nw++;
		UNIT_EXPECT(why, !ret && plan.nr == nw, "%d runs, want %d", plan.nr, nw);
		for (int i = 0; !ret && i < nw && i < plan.nr; i++) {
			const struct inc_run *g = &plan.runs[i], *w = &c->want[i];

			UNIT_EXPECT(why, g->vaddr == w->vaddr && g->nr_pages == w->nr_pages &&
				    g->flags == w->flags, "run %d = %#llx+%u %s, want %#llx+%u %s", i,
				    (unsigned long long)g->vaddr, g->nr_pages,
				    g->flags == P ? "PRESENT" : "PARENT", (unsigned long long)w->vaddr,
				    w->nr_pages, w->flags == P ? "PRESENT" : "PARENT");
			if (w->flags == P)
				present += w->nr_pages;
			else
				held += w->nr_pages;
		}
		UNIT_EXPECT(why, !ret && plan.nr_present == present && plan.nr_parent == held,
			    "counted %llu present, %llu parent",
			    (unsigned long long)plan.nr_present, (unsigned long long)plan.nr_parent);
		UNIT_EXPECT(why, plan.pid == getpid() && !plan.data, "pid or data not as built");
		if (!ret)
			inc_plan_free(&plan);
	}
	inc_parent_free(&parent);
	if (pfd >= 0)
		close(pfd);
	close(pmfd);
	close(casefd);
	unit_check(c->name, !why[0], "%s", why);
}

/* inc_parent_load() and inc_parent_track_fd() on the kinds of parents. */
static void test_parent_load(int root)
{
	static const struct inc_case good = {
		.parent = PA_IMAGE, .pvmas = {{A0, "2.", ANON, PRIV, RW}}, .pents = {{A0, 2, P}}};
	static const struct inc_case broken = {
		.parent = PA_IMAGE, .pvmas = {{A0, "4.", ANON, PRIV, RW}},
		.pents = {{A0 + 2 * PG, 1, P}, {A0, 1, P}}};
	static const struct {
		const char *name;
		const struct inc_case *c;
		int track_fd; /* written into mm-PID.img, -1: none */
		int dirfd;    /* -1: no parent at all */
		int want, want_have, want_fd;
	} t[] = {
		{"parent: none", &good, -1, -1, 0, false, TRACK_NO_PARENT},
		{"parent: with a tracker fd", &good, 77, 0, 0, true, 77},
		{"parent: without a tracker fd", &good, -1, 0, 0, true, -1},
		{"parent: unsorted pagemap refused", &broken, -1, 0, -EINVAL, false, TRACK_NO_PARENT},
	};

	for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
		char name[16], why[256] = "";
		struct inc_parent p;
		int casefd, pfd = -1, ret;

		snprintf(name, sizeof(name), "p%zu", i);
		casefd = unit_subdir(root, name);
		if (t[i].dirfd >= 0)
			pfd = write_parent(casefd, t[i].c, t[i].track_fd);
		ret = inc_parent_load(pfd, PID, &p);
		UNIT_EXPECT(why, ret == t[i].want, "returned %d, want %d", ret, t[i].want);
		UNIT_EXPECT(why, p.have == t[i].want_have, "have %d", p.have);
		UNIT_EXPECT(why, inc_parent_track_fd(&p) == t[i].want_fd, "track fd %d",
			    inc_parent_track_fd(&p));
		UNIT_EXPECT(why, !p.have || (p.mm && p.cover.nr == 1), "no mm or cover");
		inc_parent_free(&p);
		UNIT_EXPECT(why, !p.have && !p.mm && p.cover.pages_fd == -1, "free left state");
		if (pfd >= 0)
			close(pfd);
		close(casefd);
		unit_check(t[i].name, !why[0], "%s", why);
	}
}

/* A failed tracked dump marks every image down the chain. */
static void test_mark_chain(int root)
{
	char why[256] = "";
	int d0 = unit_subdir(root, "mark"), d1 = unit_subdir(d0, "parent"), d2 = unit_subdir(d1, "parent");
	struct inc_parent p;

	inc_mark_chain_reset(d0);
	UNIT_EXPECT(why, !faccessat(d0, INC_RESET_MARK, F_OK, 0), "the first image is not marked");
	UNIT_EXPECT(why, !faccessat(d1, INC_RESET_MARK, F_OK, 0), "its parent is not marked");
	UNIT_EXPECT(why, !faccessat(d2, INC_RESET_MARK, F_OK, 0), "the oldest is not marked");
	UNIT_EXPECT(why, !inc_parent_load(d1, PID, &p) && !p.have, "a marked parent was used");
	inc_parent_free(&p);
	unit_check("a failed dump marks the whole chain", !why[0], "%s", why);
	close(d2);
	close(d1);
	close(d0);
}

int main(void)
{
	char root[64];
	int rootfd;

	unit_init();
	rootfd = unit_tmpdir(root, "inc");
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		run_case(rootfd, i, &cases[i]);
	test_parent_load(rootfd);
	test_mark_chain(rootfd);
	close(rootfd);
	unit_rmrf(root);
	return unit_done("test_inc");
}
