/* SPDX-License-Identifier: MIT */
#ifndef AMBER_XSAVE_H
#define AMBER_XSAVE_H

/*
 * x86 FPU state: between the kernel's XSAVE buffer (standard format, as
 * PTRACE_GETREGSET NT_X86_XSTATE returns and a signal frame expects) and
 * CRIU's user_x86_fpregs_entry, which splits it into the legacy FXSAVE
 * area and one field per extended component (AVX, AVX-512, PKRU).
 * Component offsets come from CPUID leaf 0xD.
 */
#include <stddef.h>
#include <stdint.h>

#include "core-x86.pb-c.h"
#include "base/util.h"

#define XSAVE_MAX_SIZE 16384

/* Size of the standard-format buffer for the features enabled in XCR0. */
size_t xsave_size(void);
uint64_t xsave_features(void);

UserX86FpregsEntry *xsave_to_entry(struct arena *a, const uint8_t *buf, size_t len);
/*
 * Fills @buf (xsave_size() bytes, 64-byte aligned, zeroed by the caller)
 * from @e, with the software-reserved words a signal frame needs.
 * Returns 0 or -EINVAL if the entry does not fit this CPU.
 */
int xsave_from_entry(const UserX86FpregsEntry *e, uint8_t *buf, size_t len);

#endif
