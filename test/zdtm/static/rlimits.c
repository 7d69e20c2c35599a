// SPDX-License-Identifier: GPL-2.0
/*
 * Every resource limit survives, including some lowered from the default
 * (lowering needs no privilege; raising a hard limit would).
 */
#include <sys/resource.h>

#include "zdtm.h"

static int lower(int res, rlim_t soft, rlim_t hard)
{
	struct rlimit cur;

	if (getrlimit(res, &cur))
		return -1;
	if (hard > cur.rlim_max)
		hard = cur.rlim_max;
	if (soft > hard)
		soft = hard;
	return setrlimit(res, &(struct rlimit){ soft, hard });
}

int main(int argc, char **argv)
{
	struct rlimit want[RLIM_NLIMITS], cur;
	int i;

	test_init(argc, argv);
	if (lower(RLIMIT_NOFILE, 517, 1031) ||
	    lower(RLIMIT_CORE, 0, RLIM_INFINITY) ||
	    lower(RLIMIT_STACK, 6 << 20, 64 << 20) ||
	    lower(RLIMIT_MSGQUEUE, 12345, 54321) ||
	    lower(RLIMIT_FSIZE, 1UL << 40, 1UL << 41))
		return fail_errno("setrlimit"), 1;
	for (i = 0; i < RLIM_NLIMITS; i++)
		if (getrlimit(i, &want[i]))
			return fail_errno("getrlimit %d", i), 1;
	test_daemon();
	test_waitsig();

	for (i = 0; i < RLIM_NLIMITS; i++) {
		if (getrlimit(i, &cur))
			return fail_errno("getrlimit %d", i), 1;
		if (cur.rlim_cur != want[i].rlim_cur ||
		    cur.rlim_max != want[i].rlim_max)
			return fail("rlimit %d: %llu/%llu, want %llu/%llu", i,
				    (unsigned long long)cur.rlim_cur,
				    (unsigned long long)cur.rlim_max,
				    (unsigned long long)want[i].rlim_cur,
				    (unsigned long long)want[i].rlim_max), 1;
	}
	pass();
	return 0;
}
