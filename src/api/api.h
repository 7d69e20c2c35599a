/* SPDX-License-Identifier: MIT */
#ifndef AMBER_API_H
#define AMBER_API_H

/*
 * The public entry points of include/amber.h, over the subsystems' own
 * option structs. The public structs are the ABI (sized, extensible); the
 * internal ones may change freely. Each entry point copies the caller's
 * struct into a zeroed one of this build's size (api_copy_opts), then
 * translates it.
 */
#include <errno.h>
#include <stddef.h>

#include "amber.h"

struct ps_sec;
enum netlock_method;

/*
 * Copies @src (whose first member is its size_t sz) into @dst of
 * @dst_sz bytes, zero-filling what @src lacks. -EINVAL if @src is NULL or
 * its sz is too small to hold sz; -E2BIG if it is larger than ours and
 * the extra bytes are not all zero (an option this build doesn't know).
 */
int api_copy_opts(void *dst, size_t dst_sz, const void *src);

void api_ps_sec(struct ps_sec *sec, const struct amber_ps_endpoint *ep);
/* --network-lock into net/netlock.h's method; -EINVAL for an unknown value. */
int api_network_lock(enum amber_network_lock in, enum netlock_method *out);

/* A subsystem's nonzero result as 0 or -errno (a stray positive is -EINVAL). */
static inline int api_ret(int ret)
{
	return ret > 0 ? -EINVAL : ret;
}

#endif
