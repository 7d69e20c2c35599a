// SPDX-License-Identifier: GPL-2.0
/*
 * AVX-512 state across the dump: zmm0-zmm31 and the mask registers k1-k7
 * hold known values while the task spins until SIGTERM.  Skipped without
 * AVX-512F.
 */
#include <cpuid.h>

#include "zdtm.h"

#define NR_REGS 32

static int have_avx512(void)
{
	unsigned int a, b, c, d, xcr0_lo, xcr0_hi;

	if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_OSXSAVE) ||
	    !__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(b & bit_AVX512F))
		return 0;
	asm volatile("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
	return (xcr0_lo & 0xe6) == 0xe6; /* SSE, AVX, opmask, ZMM state */
}

#define KL(n) "kmovw " #n "*8(%[kin]), %%k" #n "\n"
#define KS(n) "kmovw %%k" #n ", " #n "*8(%[kout])\n"
#define LD(n) "vmovdqu64 " #n "*64(%[in]), %%zmm" #n "\n"
#define ST(n) "vmovdqu64 %%zmm" #n ", " #n "*64(%[out])\n"
#define LD8(n) LD(n##0) LD(n##1) LD(n##2) LD(n##3) LD(n##4) LD(n##5) LD(n##6) LD(n##7)
#define ST8(n) ST(n##0) ST(n##1) ST(n##2) ST(n##3) ST(n##4) ST(n##5) ST(n##6) ST(n##7)

__attribute__((target("avx512f"))) static void
spin(const uint8_t *in, uint8_t *out, const uint64_t *kin, uint64_t *kout)
{
	asm volatile(LD(0) LD(1) LD(2) LD(3) LD(4) LD(5) LD(6) LD(7) LD(8)
		     LD(9) LD8(1) LD(18) LD(19) LD8(2) LD(28) LD(29) LD(30) LD(31)
		     KL(1) KL(2) KL(3) KL(4) KL(5) KL(6) KL(7)
		     "1: pause\n"
		     "cmpl $0, (%[stop])\n"
		     "je 1b\n"
		     ST(0) ST(1) ST(2) ST(3) ST(4) ST(5) ST(6) ST(7) ST(8)
		     ST(9) ST8(1) ST(18) ST(19) ST8(2) ST(28) ST(29) ST(30) ST(31)
		     KS(1) KS(2) KS(3) KS(4) KS(5) KS(6) KS(7)
		     "vzeroupper\n"
		     :
		     : [in] "r"(in), [out] "r"(out), [kin] "r"(kin),
		       [kout] "r"(kout), [stop] "r"(&test_stop)
		     : "memory", "cc", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4",
		       "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11",
		       "xmm12", "xmm13", "xmm14", "xmm15", "xmm16", "xmm17",
		       "xmm18", "xmm19", "xmm20", "xmm21", "xmm22", "xmm23",
		       "xmm24", "xmm25", "xmm26", "xmm27", "xmm28", "xmm29",
		       "xmm30", "xmm31", "k1", "k2", "k3", "k4", "k5", "k6", "k7");
}

int main(int argc, char **argv)
{
	static uint8_t in[NR_REGS * 64], out[NR_REGS * 64];
	uint64_t kin[8], kout[8] = { 0 };
	uint32_t crc = 79;
	int i;

	test_init(argc, argv);
	if (!have_avx512())
		test_skip("the CPU or the OS does not support AVX-512F");
	datagen(in, sizeof(in), &crc);
	datagen(kin, sizeof(kin), &crc);
	test_daemon();
	spin(in, out, kin, kout);

	for (i = 0; i < NR_REGS; i++)
		if (memcmp(in + i * 64, out + i * 64, 64))
			return fail("zmm%d changed", i), 1;
	for (i = 1; i < 8; i++) /* kmovw: AVX512F has 16-bit masks */
		if ((uint16_t)kin[i] != (uint16_t)kout[i])
			return fail("k%d: %#x, want %#x", i, (uint16_t)kout[i],
				    (uint16_t)kin[i]), 1;
	pass();
	return 0;
}
