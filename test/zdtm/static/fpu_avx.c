// SPDX-License-Identifier: GPL-2.0
/*
 * AVX state across the dump: all 256 bits of ymm0-ymm15 hold known values
 * while the task spins in asm until SIGTERM.  Skipped without AVX.
 */
#include <cpuid.h>

#include "zdtm.h"

#define NR_REGS 16

static int have_avx(void)
{
	unsigned int a, b, c, d, xcr0_lo, xcr0_hi;

	if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_AVX) ||
	    !(c & bit_OSXSAVE))
		return 0;
	asm volatile("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
	return (xcr0_lo & 6) == 6; /* the OS saves SSE and AVX state */
}

static void spin(const uint8_t *in, uint8_t *out)
{
#define LD(n) "vmovdqu " #n "*32(%[in]), %%ymm" #n "\n"
#define ST(n) "vmovdqu %%ymm" #n ", " #n "*32(%[out])\n"
	asm volatile(LD(0) LD(1) LD(2) LD(3) LD(4) LD(5) LD(6) LD(7)
		     LD(8) LD(9) LD(10) LD(11) LD(12) LD(13) LD(14) LD(15)
		     "1: pause\n"
		     "cmpl $0, (%[stop])\n"
		     "je 1b\n"
		     ST(0) ST(1) ST(2) ST(3) ST(4) ST(5) ST(6) ST(7)
		     ST(8) ST(9) ST(10) ST(11) ST(12) ST(13) ST(14) ST(15)
		     "vzeroupper\n"
		     :
		     : [in] "r"(in), [out] "r"(out), [stop] "r"(&test_stop)
		     : "memory", "cc", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4",
		       "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",
		       "xmm11", "xmm12", "xmm13", "xmm14", "xmm15");
}

int main(int argc, char **argv)
{
	static uint8_t in[NR_REGS * 32], out[NR_REGS * 32];
	uint32_t crc = 78;
	int i;

	test_init(argc, argv);
	if (!have_avx())
		test_skip("the CPU or the OS does not support AVX");
	datagen(in, sizeof(in), &crc);
	test_daemon();
	spin(in, out);

	for (i = 0; i < NR_REGS; i++) {
		if (memcmp(in + i * 32, out + i * 32, 16))
			return fail("ymm%d: low 128 bits changed", i), 1;
		if (memcmp(in + i * 32 + 16, out + i * 32 + 16, 16))
			return fail("ymm%d: high 128 bits changed", i), 1;
	}
	pass();
	return 0;
}
