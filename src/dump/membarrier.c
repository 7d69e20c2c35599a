// SPDX-License-Identifier: MIT
/*
 * membarrier() registrations. Registering for the expedited commands is a
 * state of the mm: a task that registered MEMBARRIER_CMD_REGISTER_PRIVATE_
 * EXPEDITED gets EPERM from MEMBARRIER_CMD_PRIVATE_EXPEDITED on a fresh mm.
 * The task asks its own mm with a remote syscall: MEMBARRIER_CMD_GET_
 * REGISTRATIONS (Linux 6.3) returns the REGISTER commands as a mask; an
 * older kernel is probed as CRIU does, issuing each private expedited
 * command (each succeeds only when registered; a barrier is harmless).
 * Saved in CRIU's task_core_entry.membarrier_registration_mask; the
 * restorer registers each command again (restore/restorer/restorer.c).
 */
#define LOG_PREFIX "dump: "
#include <errno.h>
#include <stdbool.h>
#include <sys/syscall.h>

#include "base/log.h"
#include "base/remote.h"
#include "dump/core.h"
#include "dump/dump.h"

#ifndef SYS_membarrier
#define SYS_membarrier 324
#endif
/* linux/membarrier.h; GET_REGISTRATIONS is newer than our 6.1 headers. */
#define MB_CMD_PRIVATE_EXPEDITED (1 << 3)
#define MB_CMD_PRIVATE_EXPEDITED_SYNC_CORE (1 << 5)
#define MB_CMD_PRIVATE_EXPEDITED_RSEQ (1 << 7)
#define MB_CMD_GET_REGISTRATIONS (1 << 9)

/* Each expedited command's REGISTER command is the next bit. */
static int probe_registrations(struct dump_task *t, uint32_t *mask)
{
	static const int cmds[] = { MB_CMD_PRIVATE_EXPEDITED, MB_CMD_PRIVATE_EXPEDITED_SYNC_CORE,
				    MB_CMD_PRIVATE_EXPEDITED_RSEQ };

	*mask = 0;
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		long ret;
		int err = remote_syscall(&t->rem, SYS_membarrier, &ret, cmds[i], 0, 0, 0, 0, 0);

		if (err)
			return err;
		if (!ret)
			*mask |= cmds[i] << 1;
		else if (ret != -EPERM && ret != -EINVAL && ret != -ENOSYS) {
			pr_err("process %d: membarrier(%#x) failed: %ld\n", t->pid, cmds[i], ret);
			return (int)ret;
		}
	}
	return 0;
}

int dump_membarrier(struct dump_task *t, TaskCoreEntry *tc)
{
	uint32_t mask;
	long ret;
	int err = remote_syscall(&t->rem, SYS_membarrier, &ret, MB_CMD_GET_REGISTRATIONS, 0, 0, 0,
				 0, 0);

	if (err)
		return err;
	if (ret >= 0) {
		mask = ret;
	} else if (ret == -EINVAL) { /* before Linux 6.3 */
		err = probe_registrations(t, &mask);
		if (err)
			return err;
	} else if (ret == -ENOSYS) {
		return 0; /* no membarrier() at all: nothing registered */
	} else {
		pr_err("process %d: membarrier(GET_REGISTRATIONS) failed: %ld\n", t->pid, ret);
		return (int)ret;
	}
	if (mask) {
		pr_info("%d: membarrier registrations %#x\n", t->pid, mask);
		tc->has_membarrier_registration_mask = true;
		tc->membarrier_registration_mask = mask;
	}
	return 0;
}
