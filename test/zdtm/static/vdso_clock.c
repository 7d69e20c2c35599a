// SPDX-License-Identifier: GPL-2.0
/*
 * clock_gettime() through the vDSO, called in a loop across the dump:
 * CLOCK_MONOTONIC never goes backwards and still advances after restore,
 * and the vDSO is still mapped where the auxv says it is.
 */
#include <sys/auxv.h>
#include <time.h>
#include <unistd.h>

#include "zdtm.h"

static long long now_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv)
{
	void *vdso = (void *)getauxval(AT_SYSINFO_EHDR);
	long long prev, t, loops = 0;
	char perms[5];

	test_init(argc, argv);
	if (!vdso)
		test_skip("no vDSO in the auxiliary vector");
	prev = now_ns(CLOCK_MONOTONIC);
	test_daemon();
	while (!test_stop) {
		t = now_ns(CLOCK_MONOTONIC);
		if (t < prev)
			return fail("CLOCK_MONOTONIC went back by %lld ns",
				    prev - t), 1;
		prev = t;
		loops++;
	}

	if (vma_perms(vdso, perms) || strcmp(perms, "r-xp"))
		return fail("the vDSO is not mapped at %p any more", vdso), 1;
	t = now_ns(CLOCK_MONOTONIC);
	usleep(20000);
	if (now_ns(CLOCK_MONOTONIC) - t < 20000000)
		return fail("CLOCK_MONOTONIC does not advance"), 1;
	if (now_ns(CLOCK_REALTIME) < 1600000000LL * 1000000000LL)
		return fail("CLOCK_REALTIME is in the past"), 1;
	test_msg("%lld clock reads\n", loops);
	pass();
	return 0;
}
