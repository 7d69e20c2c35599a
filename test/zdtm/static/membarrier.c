// SPDX-License-Identifier: GPL-2.0
/*
 * membarrier() registrations of the mm: private expedited (and its
 * SYNC_CORE and RSEQ flavours, and global expedited, where the kernel has
 * them). After the restore each private expedited command still works
 * (unregistered, it fails with EPERM) and GET_REGISTRATIONS, where the
 * kernel has it, gives the same mask.
 */
#include <errno.h>
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "zdtm.h"

/* Newer than our 6.1 headers. */
#define CMD_GET_REGISTRATIONS (1 << 9)

static int mb(int cmd)
{
	return syscall(SYS_membarrier, cmd, 0, 0);
}

/* The private expedited commands to check, each registered by cmd << 1. */
static const int cmds[] = { MEMBARRIER_CMD_PRIVATE_EXPEDITED,
			    MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE,
			    MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ };

int main(int argc, char **argv)
{
	int supported, used = 0, mask = -1, after;

	test_init(argc, argv);
	supported = mb(MEMBARRIER_CMD_QUERY);
	if (supported < 0 || !(supported & MEMBARRIER_CMD_PRIVATE_EXPEDITED)) {
		test_skip("membarrier private expedited is not supported here");
		return 0;
	}
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		if (!(supported & cmds[i]))
			continue;
		if (mb(cmds[i]) != -1 || errno != EPERM)
			return fail("membarrier(%#x) before registering: not EPERM", cmds[i]), 1;
		if (mb(cmds[i] << 1) || mb(cmds[i]))
			return fail_errno("registering membarrier(%#x)", cmds[i]), 1;
		used |= cmds[i];
	}
	if ((supported & MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) &&
	    mb(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED))
		return fail_errno("registering global expedited"), 1;
	if (supported & CMD_GET_REGISTRATIONS)
		mask = mb(CMD_GET_REGISTRATIONS);
	test_msg("registered %#x, mask %#x\n", used, mask);
	test_daemon();
	test_waitsig();

	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if ((used & cmds[i]) && mb(cmds[i]))
			return fail_errno("membarrier(%#x) after the restore", cmds[i]), 1;
	if (mask != -1 && (after = mb(CMD_GET_REGISTRATIONS)) != mask)
		return fail("registrations %#x after the restore, %#x before", after, mask), 1;
	pass();
	return 0;
}
