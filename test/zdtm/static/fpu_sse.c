// SPDX-License-Identifier: GPL-2.0
/*
 * SSE state across the dump: xmm0-xmm15 and MXCSR hold known values while
 * the task spins in asm until SIGTERM; afterwards they must be unchanged.
 */
#include "zdtm.h"

#define NR_REGS 16
#define MXCSR 0x7fa0 /* all exceptions masked, FTZ, round down, DAZ off */

static void spin(const uint8_t *in, uint8_t *out, uint32_t *mxcsr)
{
#define LD(n) "movdqu " #n "*16(%[in]), %%xmm" #n "\n"
#define ST(n) "movdqu %%xmm" #n ", " #n "*16(%[out])\n"
	asm volatile("ldmxcsr (%[mx])\n"
		     LD(0) LD(1) LD(2) LD(3) LD(4) LD(5) LD(6) LD(7)
		     LD(8) LD(9) LD(10) LD(11) LD(12) LD(13) LD(14) LD(15)
		     "1: pause\n"
		     "cmpl $0, (%[stop])\n"
		     "je 1b\n"
		     ST(0) ST(1) ST(2) ST(3) ST(4) ST(5) ST(6) ST(7)
		     ST(8) ST(9) ST(10) ST(11) ST(12) ST(13) ST(14) ST(15)
		     "stmxcsr (%[mx])\n"
		     :
		     : [in] "r"(in), [out] "r"(out), [mx] "r"(mxcsr),
		       [stop] "r"(&test_stop)
		     : "memory", "cc", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4",
		       "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",
		       "xmm11", "xmm12", "xmm13", "xmm14", "xmm15");
}

int main(int argc, char **argv)
{
	static uint8_t in[NR_REGS * 16], out[NR_REGS * 16];
	uint32_t crc = 77, mxcsr = MXCSR;
	int i;

	test_init(argc, argv);
	datagen(in, sizeof(in), &crc);
	test_daemon();
	spin(in, out, &mxcsr);

	for (i = 0; i < NR_REGS; i++)
		if (memcmp(in + i * 16, out + i * 16, 16))
			return fail("xmm%d changed", i), 1;
	if (mxcsr != MXCSR)
		return fail("MXCSR %#x, want %#x", mxcsr, MXCSR), 1;
	pass();
	return 0;
}
