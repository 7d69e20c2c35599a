// SPDX-License-Identifier: GPL-2.0
/* The execution domain flags of personality(2) survive. */
#include <sys/personality.h>

#include "zdtm.h"

#define PERS (PER_LINUX | ADDR_NO_RANDOMIZE | STICKY_TIMEOUTS | ADDR_COMPAT_LAYOUT)

int main(int argc, char **argv)
{
	int cur;

	test_init(argc, argv);
	if (personality(PERS) < 0)
		return fail_errno("personality"), 1;
	test_daemon();
	test_waitsig();

	cur = personality(0xffffffff);
	if (cur != PERS)
		return fail("personality %#x, want %#x", cur, PERS), 1;
	pass();
	return 0;
}
