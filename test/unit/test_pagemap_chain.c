// SPDX-License-Identifier: MIT
/*
 * Unit test of the pagemap chain (src/mem/pagemap_chain.h) against
 * fixture images: chains of one to three layers are written with the
 * image writer into DIR, DIR/parent, DIR/parent/parent, loaded with
 * pm_chain_load(), and the restorer's runs (oldest layer first, each
 * read back from its layer's pages file), the zaps and the lazy view are
 * compared with the table. Bad chains must be refused with their errno.
 * Then layer lookups (pm_layer_seek, pm_layer_covers) and mm_vma_at.
 */
#define LOG_PREFIX "test: "
#include <sys/mman.h>

#include "mem/pagemap_chain.h"
#include "mem/vma.h"
#include "unit.h"

#define PID 100
#define PG  PAGE_SIZE
#define P   PE_PRESENT
#define R   PE_PARENT

/*
 * The task's VMAs: A and B private with a one-page hole between them, C
 * private, S shared anonymous (its pages are not in a task pagemap), the
 * vDSO V and, right after it, private D (CRIU saves V's pages, in one
 * entry with D's).
 */
#define A0 0x400000ull
#define B0 0x405000ull
#define C0 0x410000ull
#define S0 0x500000ull
#define V0 0x600000ull
#define D0 0x602000ull
#define CR UNIT_CRIU
#define OC UNIT_OLD_CSUM /* an older build's entry: field 1000 */
#define V1 AMBER_CSUM_V1
#define V2 AMBER_CSUM_V2

static VmaEntry vma_a = VMA_ENTRY__INIT, vma_b = VMA_ENTRY__INIT, vma_c = VMA_ENTRY__INIT,
		vma_s = VMA_ENTRY__INIT, vma_v = VMA_ENTRY__INIT, vma_d = VMA_ENTRY__INIT;
static VmaEntry *vmas[] = {&vma_a, &vma_b, &vma_c, &vma_s, &vma_v, &vma_d};
static MmEntry mm = MM_ENTRY__INIT;

static void vma_set(VmaEntry *v, uint64_t start, uint64_t end, uint32_t status)
{
	v->start = start;
	v->end = end;
	v->prot = PROT_READ | PROT_WRITE;
	v->flags = status & VMA_ANON_SHARED ? MAP_SHARED | MAP_ANONYMOUS : MAP_PRIVATE | MAP_ANONYMOUS;
	v->status = VMA_AREA_REGULAR | status;
	v->fd = -1;
}

static void mm_init(void)
{
	vma_set(&vma_a, A0, A0 + 4 * PG, VMA_ANON_PRIVATE);
	vma_set(&vma_b, B0, B0 + 3 * PG, VMA_ANON_PRIVATE);
	vma_set(&vma_c, C0, C0 + 16 * PG, VMA_ANON_PRIVATE);
	vma_set(&vma_s, S0, S0 + 4 * PG, VMA_ANON_SHARED);
	vma_set(&vma_v, V0, V0 + 2 * PG, VMA_ANON_PRIVATE | VMA_AREA_VDSO);
	vma_set(&vma_d, D0, D0 + 2 * PG, VMA_ANON_PRIVATE);
	mm.n_vmas = 6;
	mm.vmas = vmas;
}

enum mangle {
	M_NONE,
	M_TRUNC0,    /* layer 0's pages file a page short */
	M_NOPAGES0,  /* layer 0's pages file missing */
	M_FLIP1,     /* a byte of layer 1's page data flipped */
	M_LOOP,      /* DIR/parent -> DIR */
	M_SRC_NONE,  /* loaded as the lazy daemon does: no pages files */
	M_SRC_FD,    /* pages-1.img handed over as an fd */
	M_SRC_WRONG, /* an fd handed over, but for another pages id */
};

/* An expected run: vaddr, pages, layer, which checksum it carries (0: none). */
#define RUN(va, n, k, c) {.vaddr = (va), .nr_pages = (n), .layer = (k), .csum_ver = (c)}

struct chain_case {
	const char *name;
	struct unit_ent layers[3][6]; /* [0] is DIR; a layer with no entries is not written */
	enum mangle mangle;
	int want;
	struct rst_pages runs[6];  /* ends at nr_pages 0 */
	struct pm_range zaps[4];   /* ends at end 0 */
	struct rst_pages lazy[6];
};

static const struct chain_case cases[] = {
	{"one layer, two entries",
	 {{{A0, 2, P}, {C0 + 4 * PG, 3, P}}},
	 M_NONE, 0,
	 {RUN(A0, 2, 0, V2), RUN(C0 + 4 * PG, 3, 0, V2)},
	 {},
	 {RUN(A0, 2, 0, V2), RUN(C0 + 4 * PG, 3, 0, V2)}},
	{"PE_PARENT resolved one layer up, newer data laid last",
	 {{{A0, 2, P}, {A0 + 2 * PG, 2, R}}, {{A0, 4, P}}},
	 M_NONE, 0,
	 {RUN(A0, 4, 1, V2), RUN(A0, 2, 0, V2)},
	 {},
	 {RUN(A0, 2, 0, V2), RUN(A0 + 2 * PG, 2, 1, 0)}},
	{"pages freed since the parent are zapped",
	 {{{A0, 2, R}}, {{A0, 4, P}}},
	 M_NONE, 0,
	 {RUN(A0, 4, 1, V2)},
	 {{A0 + 2 * PG, A0 + 4 * PG}},
	 {RUN(A0, 2, 1, 0)}},
	{"three layers, each page from the newest that has it",
	 {{{A0, 4, R}, {C0, 1, P}}, {{A0, 1, P}, {A0 + PG, 3, R}}, {{A0, 4, P}}},
	 M_NONE, 0,
	 {RUN(A0, 4, 2, V2), RUN(A0, 1, 1, V2), RUN(C0, 1, 0, V2)},
	 {},
	 {RUN(A0, 1, 1, V2), RUN(A0 + PG, 3, 2, 0), RUN(C0, 1, 0, V2)}},
	{"an unused parent entry is not laid down",
	 {{{A0, 1, R}}, {{A0, 1, P}, {C0, 2, P}}},
	 M_NONE, 0,
	 {RUN(A0, 1, 1, V2)},
	 {},
	 {RUN(A0, 1, 1, V2)}},
	{"a parent entry across a VMA hole is read in its mapped parts",
	 {{{A0, 2, R}}, {{A0, 7, P}}},
	 M_NONE, 0,
	 {RUN(A0, 4, 1, 0), RUN(B0, 2, 1, 0)},
	 {{A0 + 2 * PG, A0 + 4 * PG}, {B0, B0 + 2 * PG}},
	 {RUN(A0, 2, 1, 0)}},
	{"a corrupt parent entry read in parts is refused",
	 {{{A0, 2, R}}, {{A0, 7, P}}},
	 M_FLIP1, -EINVAL},
	{"a corrupt parent entry read whole is left to the restorer's check",
	 {{{A0, 2, R}}, {{A0, 4, P}}},
	 M_FLIP1, 0,
	 {RUN(A0, 4, 1, V2)},
	 {{A0 + 2 * PG, A0 + 4 * PG}},
	 {RUN(A0, 2, 1, 0)}},
	{"PE_PARENT with no parent image refused",
	 {{{A0, 2, R}}},
	 M_NONE, -EINVAL},
	{"parent lacking pages a newer image refers to refused",
	 {{{A0, 4, R}}, {{A0, 2, P}}},
	 M_NONE, -EINVAL},
	{"parent lacking them two layers up refused",
	 {{{A0, 4, R}}, {{A0, 4, R}}, {{A0 + PG, 3, P}}},
	 M_NONE, -EINVAL},
	{"top layer outside the VMAs refused",
	 {{{A0 + 4 * PG, 1, P}}},
	 M_NONE, -EINVAL},
	{"top layer running past its VMA refused",
	 {{{A0 + 2 * PG, 3, P}}},
	 M_NONE, -EINVAL},
	{"top layer in a shared VMA refused",
	 {{{S0, 1, P}}},
	 M_NONE, -EINVAL},
	{"unsorted entries refused",
	 {{{C0, 1, P}, {A0, 1, P}}},
	 M_NONE, -EINVAL},
	{"overlapping entries refused",
	 {{{C0, 4, P}, {C0 + 3 * PG, 2, P}}},
	 M_NONE, -EINVAL},
	{"unaligned entry refused",
	 {{{A0 + 8, 1, P}}},
	 M_NONE, -EINVAL},
	{"entry of no pages refused",
	 {{{A0, 1, P}, {C0, 0, P}}},
	 M_NONE, -EINVAL},
	{"PE_LAZY entry refused",
	 {{{A0, 1, PE_LAZY}}},
	 M_NONE, -EINVAL},
	{"PE_PRESENT|PE_PARENT entry refused",
	 {{{A0, 1, P | R}}},
	 M_NONE, -EINVAL},
	{"truncated pages file refused",
	 {{{A0, 2, P}}},
	 M_TRUNC0, -EINVAL},
	{"missing pages file refused",
	 {{{A0, 2, P}}},
	 M_NOPAGES0, -ENOENT},
	{"a parent loop refused",
	 {{{A0, 2, R}}},
	 M_LOOP, -ELOOP},
	{"no pages files for the lazy daemon",
	 {{{A0, 2, P}}},
	 M_SRC_NONE, 0,
	 {RUN(A0, 2, 0, V2)},
	 {},
	 {RUN(A0, 2, 0, V2)}},
	{"pages file handed over as an fd",
	 {{{A0, 2, P}, {B0, 1, P}}},
	 M_SRC_FD, 0,
	 {RUN(A0, 2, 0, V2), RUN(B0, 1, 0, V2)},
	 {},
	 {RUN(A0, 2, 0, V2), RUN(B0, 1, 0, V2)}},
	{"CRIU 4.2's entries: count in field 5, PE_LAZY|PE_PRESENT, no checksum",
	 {{{A0, 2, P | PE_LAZY | CR}, {C0, 3, P | CR}}},
	 M_NONE, 0,
	 {RUN(A0, 2, 0, 0), RUN(C0, 3, 0, 0)},
	 {},
	 {RUN(A0, 2, 0, 0), RUN(C0, 3, 0, 0)}},
	{"CRIU's entry over the vDSO and the next VMA: split, vDSO part dropped",
	 {{{V0, 4, P | CR}}},
	 M_NONE, 0,
	 {RUN(D0, 2, 0, 0)},
	 {},
	 {RUN(D0, 2, 0, 0)}},
	{"an older build's dump: its field 1000 sums kept as version 1",
	 {{{A0, 2, P | OC}, {C0 + 4 * PG, 3, P | OC}}},
	 M_NONE, 0,
	 {RUN(A0, 2, 0, V1), RUN(C0 + 4 * PG, 3, 0, V1)},
	 {},
	 {RUN(A0, 2, 0, V1), RUN(C0 + 4 * PG, 3, 0, V1)}},
	{"a new dump over an older build's parent: each layer's own sum",
	 {{{A0, 2, P}, {A0 + 2 * PG, 2, R}}, {{A0, 4, P | OC}}},
	 M_NONE, 0,
	 {RUN(A0, 4, 1, V1), RUN(A0, 2, 0, V2)},
	 {},
	 {RUN(A0, 2, 0, V2), RUN(A0 + 2 * PG, 2, 1, 0)}},
	{"amber's checksummed vDSO entry dropped",
	 {{{A0, 1, P}, {V0, 2, P}}},
	 M_NONE, 0,
	 {RUN(A0, 1, 0, V2)},
	 {},
	 {RUN(A0, 1, 0, V2)}},
	{"a checksummed entry across two VMAs refused, not split",
	 {{{V0, 4, P}}},
	 M_NONE, -EINVAL},
	{"pages file not handed over refused",
	 {{{A0, 2, P}}},
	 M_SRC_WRONG, -ENOENT},
};

static int nr_layers(const struct chain_case *c)
{
	int n = 0;

	while (n < 3 && !unit_ent_end(&c->layers[n][0]))
		n++;
	return n;
}

/* Writes the case's layers under @root/@name; returns layer 0's dirfd. */
static int write_chain(int root, const char *name, const struct chain_case *c)
{
	int fd = unit_subdir(root, name), top = fd;

	for (int k = 0; k < nr_layers(c) && fd >= 0; k++) {
		int up;

		if (unit_write_pagemap(fd, IMG_PAGEMAP, PID, k + 1, c->layers[k], k + 1))
			return -1;
		if (k + 1 == nr_layers(c))
			break;
		up = unit_subdir(fd, "parent");
		if (fd != top)
			close(fd);
		fd = up;
	}
	if (fd != top)
		close(fd);
	return top;
}

static bool same_run(const struct rst_pages *a, const struct rst_pages *b)
{
	return a->vaddr == b->vaddr && a->nr_pages == b->nr_pages && a->layer == b->layer &&
	       a->csum_ver == b->csum_ver;
}

/* Each run's pages read back from its layer must be that layer's fixture data. */
static void check_run_data(const struct pm_chain *pc, const struct rst_pages *r, char *why,
			   size_t len)
{
	const struct pm_layer *l = &pc->layers[r->layer];
	size_t n = (size_t)r->nr_pages * PG;
	uint8_t *buf;

	if (l->pages_fd < 0)
		return;
	buf = malloc(n);
	if (!buf || pread_full(l->pages_fd, buf, n, r->off)) {
		snprintf(why, len, "can't read run %#llx back", (unsigned long long)r->vaddr);
	} else {
		for (uint32_t p = 0; p < r->nr_pages && !why[0]; p++)
			if (!unit_page_is(buf + p * PG, r->layer + 1, r->vaddr + p * PG))
				snprintf(why, len, "run %#llx: page %u is not layer %d's data",
					 (unsigned long long)r->vaddr, p, r->layer);
		if (!why[0] && r->csum_ver &&
		    amber_csum_ver(buf, n, r->vaddr, r->csum_ver) != r->csum)
			snprintf(why, len, "run %#llx: checksum does not match its data",
				 (unsigned long long)r->vaddr);
	}
	free(buf);
}

static void compare_runs(const char *what, const struct rst_pages *got, int nr,
			 const struct rst_pages *want, char *why, size_t len)
{
	int n = 0;

	while (n < 6 && want[n].nr_pages)
		n++;
	if (why[0])
		return;
	if (nr != n) {
		snprintf(why, len, "%d %s, want %d", nr, what, n);
		return;
	}
	for (int i = 0; i < n; i++)
		if (!same_run(&got[i], &want[i])) {
			snprintf(why, len, "%s[%d] = %#llx+%u layer %d csum %d, want %#llx+%u layer %d "
				 "csum %d", what, i, (unsigned long long)got[i].vaddr, got[i].nr_pages,
				 got[i].layer, got[i].csum_ver, (unsigned long long)want[i].vaddr,
				 want[i].nr_pages, want[i].layer, want[i].csum_ver);
			return;
		}
}

static void run_case(int root, int idx, const struct chain_case *c)
{
	char name[16], why[256] = "";
	struct pm_pages_fd given = {.id = 1, .fd = -1};
	struct pm_pages_src src = {.fds = &given, .nr_fds = 1}, *srcp = NULL;
	struct pm_chain pc;
	int dirfd, ret, nz = 0;

	snprintf(name, sizeof(name), "c%d", idx);
	dirfd = write_chain(root, name, c);
	if (dirfd < 0) {
		unit_check(c->name, false, "can't write the fixture");
		return;
	}
	switch (c->mangle) {
	case M_TRUNC0: {
		int fd = openat(dirfd, "pages-1.img", O_RDWR);

		if (fd < 0 || ftruncate(fd, 1 * PG))
			snprintf(why, sizeof(why), "can't truncate");
		close(fd);
		break;
	}
	case M_NOPAGES0:
		unlinkat(dirfd, "pages-1.img", 0);
		break;
	case M_FLIP1: {
		int up = openat(dirfd, "parent", O_DIRECTORY | O_RDONLY);

		if (up < 0 || unit_flip_byte(up, "pages-2.img", PG + 100))
			snprintf(why, sizeof(why), "can't corrupt the parent");
		close(up);
		break;
	}
	case M_LOOP:
		if (symlinkat(".", dirfd, "parent"))
			snprintf(why, sizeof(why), "can't make the loop");
		break;
	case M_SRC_NONE:
		unlinkat(dirfd, "pages-1.img", 0);
		src = (struct pm_pages_src){.none = true};
		srcp = &src;
		break;
	case M_SRC_FD:
	case M_SRC_WRONG:
		given.fd = openat(dirfd, "pages-1.img", O_RDONLY);
		unlinkat(dirfd, "pages-1.img", 0); /* only the fd may serve */
		given.id = c->mangle == M_SRC_FD ? 1 : 9;
		srcp = &src;
		break;
	default:
		break;
	}
	ret = pm_chain_load(&pc, dirfd, PID, &mm, srcp);
	UNIT_EXPECT(why, ret == c->want, "returned %d (%s), want %d", ret, strerror(-ret), c->want);
	if (!ret && !why[0]) {
		compare_runs("runs", pc.runs, pc.nr_runs, c->runs, why, sizeof(why));
		compare_runs("lazy runs", pc.lazy, pc.nr_lazy, c->lazy, why, sizeof(why));
		while (nz < 4 && c->zaps[nz].end)
			nz++;
		UNIT_EXPECT(why, pc.nr_zaps == nz, "%d zaps, want %d", pc.nr_zaps, nz);
		for (int i = 0; i < nz && i < pc.nr_zaps; i++)
			UNIT_EXPECT(why, pc.zaps[i].start == c->zaps[i].start &&
				    pc.zaps[i].end == c->zaps[i].end,
				    "zap %d = %#llx-%#llx", i, (unsigned long long)pc.zaps[i].start,
				    (unsigned long long)pc.zaps[i].end);
		/* a corrupt page is the restorer's to find (whole entries) */
		for (int i = 0; i < pc.nr_runs && !why[0] && c->mangle != M_FLIP1; i++)
			check_run_data(&pc, &pc.runs[i], why, sizeof(why));
		for (int i = 0; i < pc.nr_lazy && !why[0] && c->mangle != M_FLIP1; i++)
			check_run_data(&pc, &pc.lazy[i], why, sizeof(why));
		if (c->mangle == M_SRC_NONE)
			UNIT_EXPECT(why, pc.layers[0].pages_fd < 0, "a pages fd was opened");
		if (c->mangle == M_SRC_FD)
			UNIT_EXPECT(why, pc.layers[0].pages_fd >= 0 &&
				    pc.layers[0].pages_fd != given.fd, "the given fd was not dup'ed");
		pm_chain_free(&pc);
		UNIT_EXPECT(why, !pc.runs && !pc.lazy && !pc.zaps && !pc.nr_layers,
			    "pm_chain_free left state");
	}
	if (given.fd >= 0)
		close(given.fd);
	close(dirfd);
	unit_check(c->name, !why[0], "%s", why);
}

/* Lookups in one loaded layer. */
static void test_lookups(int root)
{
	static const struct unit_ent ents[] = {
		{A0, 2, P}, {A0 + 2 * PG, 1, R}, {C0, 4, P}, {C0 + 8 * PG, 2, R}, {}};
	static const struct {
		const char *name;
		uint64_t addr;
		int want;
	} seeks[] = {
		{"seek before everything", 0x1000, 0},
		{"seek first page", A0, 0},
		{"seek inside an entry", A0 + PG + 5, 0},
		{"seek to the adjacent entry", A0 + 2 * PG, 1},
		{"seek into a gap", A0 + 3 * PG, 2},
		{"seek last entry's end page", C0 + 9 * PG, 3},
		{"seek past everything", C0 + 10 * PG, 4},
	};
	static const struct {
		const char *name;
		uint64_t start, end;
		bool want;
	} covers[] = {
		{"covers one entry", A0, A0 + 2 * PG, true},
		{"covers across adjacent PE_PRESENT and PE_PARENT", A0, A0 + 3 * PG, true},
		{"covers a part of an entry", C0 + PG, C0 + 3 * PG, true},
		{"does not cover into a gap", A0, A0 + 4 * PG, false},
		{"does not cover a gap between entries", C0 + 2 * PG, C0 + 9 * PG, false},
		{"does not cover past the last entry", C0 + 8 * PG, C0 + 11 * PG, false},
		{"does not cover before the first", A0 - PG, A0 + PG, false},
	};
	static const struct {
		const char *name;
		uint64_t addr;
		const VmaEntry *want;
	} vma_at[] = {
		{"vma_at start of A", A0, &vma_a},
		{"vma_at last byte of A", A0 + 4 * PG - 1, &vma_a},
		{"vma_at the hole between A and B", A0 + 4 * PG, NULL},
		{"vma_at B", B0 + PG, &vma_b},
		{"vma_at S", S0 + 3 * PG, &vma_s},
		{"vma_at past the end", S0 + 4 * PG, NULL},
		{"vma_at below the first", 0, NULL},
	};
	struct pm_layer l;
	int fd = unit_subdir(root, "lookups"), ret;

	if (fd < 0 || unit_write_pagemap(fd, IMG_PAGEMAP, PID, 7, ents, 1)) {
		unit_check("lookups fixture", false, "can't write it");
		return;
	}
	ret = pm_layer_load(&l, fd, IMG_PAGEMAP, PID, NULL);
	if (!unit_check("load one layer", !ret && l.nr == 4 && l.pages_id == 7 &&
			l.pages_size == 6 * PG && l.pages_fd >= 0 && pm_layer_has_parent_refs(&l),
			"ret %d nr %d pages_id %u size %llu", ret, l.nr, l.pages_id,
			(unsigned long long)l.pages_size))
		goto out;
	unit_check("entry offsets in the pages file", l.ents[0].off == 0 &&
		   l.ents[2].off == 2 * PG && l.ents[2].flags == P && l.ents[1].flags == R,
		   "offsets %llu %llu", (unsigned long long)l.ents[0].off,
		   (unsigned long long)l.ents[2].off);
	for (size_t i = 0; i < ARRAY_SIZE(seeks); i++) {
		int got = pm_layer_seek(&l, seeks[i].addr);

		unit_check(seeks[i].name, got == seeks[i].want, "got %d, want %d", got,
			   seeks[i].want);
	}
	for (size_t i = 0; i < ARRAY_SIZE(covers); i++) {
		bool got = pm_layer_covers(&l, covers[i].start, covers[i].end);

		unit_check(covers[i].name, got == covers[i].want, "got %d", got);
	}
	pm_layer_free(&l);
	unit_check("pm_layer_free", !l.ents && !l.nr && l.pages_fd == -1, "left state");
out:
	for (size_t i = 0; i < ARRAY_SIZE(vma_at); i++) {
		const VmaEntry *got = mm_vma_at(&mm, vma_at[i].addr);

		unit_check(vma_at[i].name, got == vma_at[i].want, "got %p", (void *)got);
	}
	{
		static const struct unit_ent plain[] = {{A0, 1, P}, {}};
		int sfd = unit_subdir(root, "plain");

		unit_check("layer without parent refs",
			   sfd >= 0 && !unit_write_pagemap(sfd, IMG_PAGEMAP, PID, 1, plain, 1) &&
			   !pm_layer_load(&l, sfd, IMG_PAGEMAP, PID, NULL) &&
			   !pm_layer_has_parent_refs(&l), "has parent refs or failed to load");
		pm_layer_free(&l);
		ret = pm_layer_load(&l, sfd, IMG_PAGEMAP, PID + 1, NULL);
		unit_check("missing pagemap refused", ret == -ENOENT && l.pages_fd == -1,
			   "returned %d", ret);
		close(sfd);
	}
	close(fd);
}

int main(void)
{
	char root[64];
	int rootfd;

	unit_init();
	mm_init();
	rootfd = unit_tmpdir(root, "chain");
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		run_case(rootfd, i, &cases[i]);
	test_lookups(rootfd);
	close(rootfd);
	unit_rmrf(root);
	return unit_done("test_pagemap_chain");
}
