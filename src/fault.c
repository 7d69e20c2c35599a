// SPDX-License-Identifier: MIT
#define LOG_PREFIX "fault: "
#include <stdlib.h>
#include <string.h>

#include "fault.h"
#include "log.h"

bool fault_injected(const char *stage)
{
	const char *f = getenv("AMBER_FAULT");

	if (!f || strcmp(f, stage))
		return false;
	pr_err("fault injected at stage %s\n", stage);
	return true;
}
