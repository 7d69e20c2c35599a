// SPDX-License-Identifier: MIT
/* seccomp filters and no_new_privs of the frozen threads (seccomp.h). */
#define LOG_PREFIX "seccomp: "
#include <errno.h>
#include <string.h>
#include <sys/ptrace.h>

#include "base/log.h"
#include "base/proc.h"
#include "base/util.h"
#include "dump/dump.h"
#include "dump/seccomp.h"
#include "image/image.h"
#include "seccomp.pb-c.h"

#ifndef PTRACE_SECCOMP_GET_FILTER
#define PTRACE_SECCOMP_GET_FILTER 0x420c
#endif
#ifndef PTRACE_SECCOMP_GET_METADATA
#define PTRACE_SECCOMP_GET_METADATA 0x420d
#endif
#define MAX_CHAIN 512 /* the kernel's limit is on instructions; plenty */
#define INSN_SIZE 8   /* struct sock_filter */

/* The filter equal to (@data, @flags, @prev), added if new; its index or -errno. */
static int filter_index(struct dump_ctx *dc, void *data, size_t len, uint32_t flags, int prev)
{
	SeccompFilter *f, **arr;

	for (size_t i = 0; i < dc->nr_seccomp; i++) {
		f = dc->seccomp[i];
		if (f->filter.len == len && !memcmp(f->filter.data, data, len) &&
		    f->flags == flags && (prev < 0 ? !f->has_prev : f->has_prev && f->prev == (uint32_t)prev))
			return i;
	}
	arr = arena_array(&dc->arena, SeccompFilter *, dc->nr_seccomp + 1);
	f = arena_new(&dc->arena, SeccompFilter);
	if (!arr || !f)
		return -ENOMEM;
	seccomp_filter__init(f);
	f->filter.data = arena_memdup(&dc->arena, data, len);
	f->filter.len = len;
	f->has_flags = true;
	f->flags = flags;
	f->has_prev = prev >= 0;
	f->prev = prev < 0 ? 0 : prev;
	if (dc->nr_seccomp)
		memcpy(arr, dc->seccomp, dc->nr_seccomp * sizeof(*arr));
	arr[dc->nr_seccomp] = f;
	dc->seccomp = arr;
	return dc->nr_seccomp++;
}

/* Reads filter @idx of @tid (0: the newest) into a malloc'ed buffer; 0 past the last. */
static long get_filter(pid_t tid, long idx, void **out, uint32_t *flags)
{
	struct {
		uint64_t filter_off, flags;
	} md = { idx, 0 };
	long n = ptrace(PTRACE_SECCOMP_GET_FILTER, tid, idx, NULL);

	if (n < 0)
		return errno == ENOENT ? 0 : -errno;
	*out = xzalloc(n * INSN_SIZE);
	if (!*out)
		return -ENOMEM;
	if (ptrace(PTRACE_SECCOMP_GET_FILTER, tid, idx, *out) != n) {
		free(*out);
		return -EIO;
	}
	if (ptrace(PTRACE_SECCOMP_GET_METADATA, tid, sizeof(md), &md) < 0)
		md.flags = 0; /* older kernels: no flags */
	*flags = md.flags;
	return n;
}

static int dump_chain(struct dump_ctx *dc, pid_t tid, ThreadCoreEntry *tc)
{
	void *progs[MAX_CHAIN];
	uint32_t flags[MAX_CHAIN];
	long lens[MAX_CHAIN];
	int nr = 0, prev = -1, ret = 0;

	while (nr < MAX_CHAIN) {
		long n = get_filter(tid, nr, &progs[nr], &flags[nr]);

		if (n <= 0) {
			ret = n;
			break;
		}
		lens[nr++] = n;
	}
	if (!ret && nr == MAX_CHAIN)
		ret = -E2BIG;
	/* Oldest first, so that prev always points back. */
	for (int i = nr - 1; i >= 0 && !ret; i--) {
		prev = filter_index(dc, progs[i], lens[i] * INSN_SIZE, flags[i], prev);
		if (prev < 0)
			ret = prev;
	}
	for (int i = 0; i < nr; i++)
		free(progs[i]);
	if (ret) {
		pr_err("can't read the seccomp filters of %d: %s\n", tid, strerror(-ret));
		return ret;
	}
	tc->has_seccomp_filter = true;
	tc->seccomp_filter = prev;
	return 0;
}

int dump_thread_seccomp(struct dump_ctx *dc, pid_t pid, pid_t tid, ThreadCoreEntry *tc)
{
	struct proc_status st;
	int ret = proc_parse_status(pid, tid, &st);

	if (ret)
		return ret;
	if (st.no_new_privs) {
		tc->has_amber_no_new_privs = true;
		tc->amber_no_new_privs = true;
	}
	if (!st.seccomp)
		return 0;
	if (st.seccomp != SECCOMP_MODE__strict && st.seccomp != SECCOMP_MODE__filter) {
		pr_err("thread %d: unknown seccomp mode %d\n", tid, st.seccomp);
		return -EOPNOTSUPP;
	}
	tc->has_seccomp_mode = true;
	tc->seccomp_mode = st.seccomp;
	return st.seccomp == SECCOMP_MODE__filter ? dump_chain(dc, tid, tc) : 0;
}

int dump_write_seccomp(struct dump_ctx *dc)
{
	SeccompEntry se = SECCOMP_ENTRY__INIT;

	if (!dc->nr_seccomp)
		return 0;
	se.seccomp_filters = dc->seccomp;
	se.n_seccomp_filters = dc->nr_seccomp;
	return img_write_one(dc->dirfd, IMG_SECCOMP, 0, &se.base);
}
