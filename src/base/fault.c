// SPDX-License-Identifier: MIT
#define LOG_PREFIX "fault: "
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/fault.h"
#include "base/log.h"

bool fault_injected(const char *stage)
{
	const char *f = getenv("AMBER_FAULT");
	size_t len = strlen(stage);

	if (!f || strncmp(f, stage, len))
		return false;
	if (!strcmp(f + len, ":sleep")) {
		/* Stall here, the tree still frozen, for a test to SIGKILL us. */
		pr_info("sleeping at stage %s\n", stage);
		for (;;)
			pause();
	}
	if (f[len] == '@') {
		/* STAGE@N: the Nth time the stage is reached, e.g. the Nth message. */
		static long hits;

		if (++hits != strtol(f + len + 1, NULL, 10))
			return false;
	} else if (f[len]) {
		return false;
	}
	pr_err("fault injected at stage %s\n", stage);
	return true;
}
