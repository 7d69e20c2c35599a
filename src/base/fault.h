/* SPDX-License-Identifier: MIT */
#ifndef AMBER_FAULT_H
#define AMBER_FAULT_H

/*
 * Fault injection for tests: AMBER_FAULT=<stage> makes the named stage
 * fail as if a syscall had, so tests can check that a failed dump leaves
 * the tree running and a failed restore leaves nothing behind.
 * AMBER_FAULT=<stage>:sleep stops there for good instead (the tree still
 * frozen), so a test can SIGKILL amber mid-dump. AMBER_FAULT=<stage>@N
 * fails only the Nth time the stage is reached (the Nth message).
 */
#include <stdbool.h>

bool fault_injected(const char *stage);

#endif
