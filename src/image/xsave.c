// SPDX-License-Identifier: MIT
#define LOG_PREFIX "xsave: "
#include <cpuid.h>
#include <errno.h>
#include <string.h>

#include "base/log.h"
#include "image/xsave.h"

#define FXSAVE_SIZE	   512
#define XSAVE_HDR_OFF	   512
#define FP_XSTATE_MAGIC1   0x46505853U
#define FP_XSTATE_MAGIC2   0x46505845U
#define SW_RESERVED_OFF	   464

enum {
	XFEATURE_YMM = 2,
	XFEATURE_OPMASK = 5,
	XFEATURE_ZMM_HI256 = 6,
	XFEATURE_HI16_ZMM = 7,
	XFEATURE_PKRU = 9,
};

/* The software-reserved bytes of the FXSAVE area, as the kernel uses them. */
struct fx_sw_bytes {
	uint32_t magic1;
	uint32_t extended_size;
	uint64_t xfeatures;
	uint32_t xstate_size;
	uint32_t padding[7];
};

struct comp {
	int feature;
	size_t words;	/* in the entry's units */
	size_t unit;	/* bytes per word */
};

static const struct comp comps[] = {
	{ XFEATURE_YMM, 64, 4 },      { XFEATURE_OPMASK, 8, 8 }, { XFEATURE_ZMM_HI256, 64, 8 },
	{ XFEATURE_HI16_ZMM, 128, 8 }, { XFEATURE_PKRU, 2, 4 },
};

static uint32_t comp_offset(int feature, uint32_t *size)
{
	unsigned int eax, ebx, ecx, edx;

	__cpuid_count(0xd, feature, eax, ebx, ecx, edx);
	if (size)
		*size = eax;
	return ebx;
}

/*
 * AMX tile data is enabled in XCR0 but allocated per task on demand (XFD):
 * the kernel's signal frames and ptrace leave it out, and so do we.
 */
#define XFEATURE_XTILE_DATA 18

uint64_t xsave_features(void)
{
	unsigned int lo, hi;

	__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	return (((uint64_t)hi << 32) | lo) & ~(1ULL << XFEATURE_XTILE_DATA);
}

/* The end of the last enabled component: the signal frame's xstate_size. */
size_t xsave_size(void)
{
	uint64_t xcr0 = xsave_features();
	size_t end = XSAVE_HDR_OFF + 64;

	for (int f = 2; f < 64; f++) {
		uint32_t size, off;

		if (!(xcr0 & (1ULL << f)))
			continue;
		off = comp_offset(f, &size);
		if (off + size > end)
			end = off + size;
	}
	return end;
}

static void **comp_field(UserX86XsaveEntry *x, int feature, size_t **n)
{
	switch (feature) {
	case XFEATURE_YMM:
		*n = &x->n_ymmh_space;
		return (void **)&x->ymmh_space;
	case XFEATURE_OPMASK:
		*n = &x->n_opmask_reg;
		return (void **)&x->opmask_reg;
	case XFEATURE_ZMM_HI256:
		*n = &x->n_zmm_upper;
		return (void **)&x->zmm_upper;
	case XFEATURE_HI16_ZMM:
		*n = &x->n_hi16_zmm;
		return (void **)&x->hi16_zmm;
	default:
		*n = &x->n_pkru;
		return (void **)&x->pkru;
	}
}

UserX86FpregsEntry *xsave_to_entry(struct arena *a, const uint8_t *buf, size_t len)
{
	UserX86FpregsEntry *e = arena_new(a, UserX86FpregsEntry);
	UserX86XsaveEntry *x = arena_new(a, UserX86XsaveEntry);
	uint64_t xstate_bv;

	if (!e || !x || len < FXSAVE_SIZE + 64)
		return NULL;
	user_x86_fpregs_entry__init(e);
	user_x86_xsave_entry__init(x);
	e->cwd = *(const uint16_t *)(buf + 0);
	e->swd = *(const uint16_t *)(buf + 2);
	e->twd = *(const uint16_t *)(buf + 4);
	e->fop = *(const uint16_t *)(buf + 6);
	e->rip = *(const uint64_t *)(buf + 8);
	e->rdp = *(const uint64_t *)(buf + 16);
	e->mxcsr = *(const uint32_t *)(buf + 24);
	e->mxcsr_mask = *(const uint32_t *)(buf + 28);
	e->n_st_space = 32;
	e->st_space = arena_memdup(a, buf + 32, 128);
	e->n_xmm_space = 64;
	e->xmm_space = arena_memdup(a, buf + 160, 256);
	e->n_padding = 24;
	e->padding = arena_memdup(a, buf + 416, 96);
	if (!e->st_space || !e->xmm_space || !e->padding)
		return NULL;

	xstate_bv = *(const uint64_t *)(buf + XSAVE_HDR_OFF);
	x->xstate_bv = xstate_bv;
	for (size_t i = 0; i < sizeof(comps) / sizeof(comps[0]); i++) {
		const struct comp *c = &comps[i];
		uint32_t size, off = comp_offset(c->feature, &size);
		size_t bytes = c->words * c->unit, *n;
		void **field;

		if (!(xsave_features() & (1ULL << c->feature)) || !off || off + bytes > len)
			continue;
		field = comp_field(x, c->feature, &n);
		*field = arena_memdup(a, buf + off, bytes);
		if (!*field)
			return NULL;
		*n = c->words;
	}
	e->xsave = x;
	return e;
}

int xsave_from_entry(const UserX86FpregsEntry *e, uint8_t *buf, size_t len)
{
	struct fx_sw_bytes sw = { 0 };
	uint64_t xcr0 = xsave_features();
	UserX86XsaveEntry *x = e->xsave;

	if (len < xsave_size() + 4 || e->n_st_space != 32 || e->n_xmm_space != 64) {
		pr_err("bad fpregs entry\n");
		return -EINVAL;
	}
	*(uint16_t *)(buf + 0) = e->cwd;
	*(uint16_t *)(buf + 2) = e->swd;
	*(uint16_t *)(buf + 4) = e->twd;
	*(uint16_t *)(buf + 6) = e->fop;
	*(uint64_t *)(buf + 8) = e->rip;
	*(uint64_t *)(buf + 16) = e->rdp;
	*(uint32_t *)(buf + 24) = e->mxcsr;
	*(uint32_t *)(buf + 28) = e->mxcsr_mask;
	memcpy(buf + 32, e->st_space, 128);
	memcpy(buf + 160, e->xmm_space, 256);

	if (x) {
		if (x->xstate_bv & ~xcr0) {
			pr_err("image has FPU state (%#llx) this CPU lacks (%#llx)\n",
			       (unsigned long long)x->xstate_bv, (unsigned long long)xcr0);
			return -EINVAL;
		}
		*(uint64_t *)(buf + XSAVE_HDR_OFF) = x->xstate_bv;
		for (size_t i = 0; i < sizeof(comps) / sizeof(comps[0]); i++) {
			const struct comp *c = &comps[i];
			uint32_t size, off = comp_offset(c->feature, &size);
			size_t *n;
			void **field = comp_field((UserX86XsaveEntry *)x, c->feature, &n);

			if (!*n)
				continue;
			if (*n != c->words || !off || off + c->words * c->unit > len) {
				pr_err("bad xsave component %d in image\n", c->feature);
				return -EINVAL;
			}
			memcpy(buf + off, *field, c->words * c->unit);
		}
	} else {
		/* Legacy state only: x87 and SSE. */
		*(uint64_t *)(buf + XSAVE_HDR_OFF) = 3;
	}
	sw.magic1 = FP_XSTATE_MAGIC1;
	sw.xstate_size = xsave_size();
	sw.extended_size = sw.xstate_size + 4;
	sw.xfeatures = xcr0;
	memcpy(buf + SW_RESERVED_OFF, &sw, sizeof(sw));
	*(uint32_t *)(buf + sw.xstate_size) = FP_XSTATE_MAGIC2;
	return 0;
}
