// SPDX-License-Identifier: GPL-2.0
/* sigaltstack: the alternate stack survives and SA_ONSTACK handlers use it. */
#include <signal.h>
#include <stdlib.h>

#include "zdtm.h"

#define STACK_SIZE (64UL << 10)

static char *stack;
static volatile int on_alt;

static void handler(int sig)
{
	char local;

	(void)sig;
	on_alt = &local >= stack && &local < stack + STACK_SIZE;
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = handler, .sa_flags = SA_ONSTACK };
	stack_t ss, cur;

	test_init(argc, argv);
	stack = aligned_alloc(4096, STACK_SIZE);
	if (!stack)
		return fail("alloc"), 1;
	ss = (stack_t){ .ss_sp = stack, .ss_size = STACK_SIZE };
	sigemptyset(&sa.sa_mask);
	if (sigaltstack(&ss, NULL) || sigaction(SIGUSR2, &sa, NULL))
		return fail_errno("setup"), 1;
	test_daemon();
	test_waitsig();

	if (sigaltstack(NULL, &cur))
		return fail_errno("sigaltstack"), 1;
	if (cur.ss_sp != stack || cur.ss_size != STACK_SIZE || cur.ss_flags)
		return fail("altstack %p/%zu/%#x, want %p/%lu/0", cur.ss_sp,
			    cur.ss_size, cur.ss_flags, stack, STACK_SIZE), 1;
	raise(SIGUSR2);
	if (!on_alt)
		return fail("the handler did not run on the alternate stack"), 1;
	pass();
	return 0;
}
