// SPDX-License-Identifier: MIT
/* seccomp.img on restore (seccomp.h). */
#define LOG_PREFIX "load: "
#include <errno.h>

#include "base/log.h"
#include "image/image.h"
#include "restore/restore.h"
#include "restore/seccomp.h"

#define BPF_MAXINSNS 4096
#define INSN_SIZE 8

int rst_load_seccomp(struct rst_ctx *rc)
{
	struct img *img = img_open_optional(rc->dirfd, IMG_SECCOMP, 0);
	SeccompEntry *se;
	int ret;

	if (!img)
		return errno == ENOENT ? 0 : -errno;
	ret = img_read_msg(img, &seccomp_entry__descriptor, (ProtobufCMessage **)&se);
	img_close(img);
	if (ret <= 0)
		return ret ? ret : (pr_err("seccomp.img: no entry\n"), -EINVAL);
	rc->seccomp = se;
	for (size_t i = 0; i < se->n_seccomp_filters; i++) {
		SeccompFilter *f = se->seccomp_filters[i];

		if (!f->filter.len || f->filter.len % INSN_SIZE ||
		    f->filter.len / INSN_SIZE > BPF_MAXINSNS) {
			pr_err("seccomp.img: filter %zu has %zu bytes\n", i, f->filter.len);
			return -EINVAL;
		}
		if (f->has_prev && f->prev >= i) {
			pr_err("seccomp.img: filter %zu follows %u, not an earlier one\n", i, f->prev);
			return -EINVAL;
		}
	}
	return 0;
}

int rst_seccomp_chain(struct rst_ctx *rc, struct rst_task *t, int i, SeccompFilter **chain,
		      int max, size_t *bytes)
{
	ThreadCoreEntry *tc = t->cores[i]->thread_core;
	SeccompFilter *rev[RST_SECCOMP_MAX_CHAIN];
	int n = 0;

	*bytes = 0;
	if (!tc->has_seccomp_mode || tc->seccomp_mode != SECCOMP_MODE__filter)
		return 0;
	for (int64_t f = tc->seccomp_filter; n < max && n < RST_SECCOMP_MAX_CHAIN;) {
		SeccompFilter *sf = rc->seccomp->seccomp_filters[f];

		rev[n++] = sf;
		*bytes += sf->filter.len;
		if (!sf->has_prev)
			break;
		f = sf->prev;
	}
	for (int k = 0; k < n; k++)
		chain[k] = rev[n - 1 - k];
	return n;
}

bool rst_has_seccomp(const struct rst_ctx *rc)
{
	for (int k = 0; k < rc->nr_tasks; k++) {
		const struct rst_task *t = &rc->tasks[k];

		for (int i = 0; i < t->nr_threads; i++) {
			/* A zombie's core has no thread_core. */
			const ThreadCoreEntry *tc = t->cores[i]->thread_core;

			if (tc && tc->has_seccomp_mode && tc->seccomp_mode != SECCOMP_MODE__disabled)
				return true;
		}
	}
	return false;
}

int rst_check_seccomp(struct rst_ctx *rc, struct rst_task *t)
{
	size_t nr = rc->seccomp ? rc->seccomp->n_seccomp_filters : 0;

	for (int i = 0; i < t->nr_threads; i++) {
		ThreadCoreEntry *tc = t->cores[i]->thread_core;
		pid_t tid = t->pe->threads[i];
		SeccompFilter *chain[RST_SECCOMP_MAX_CHAIN];
		size_t bytes;

		if (!tc->has_seccomp_mode || tc->seccomp_mode == SECCOMP_MODE__disabled)
			continue;
		if (tc->seccomp_mode != SECCOMP_MODE__strict &&
		    tc->seccomp_mode != SECCOMP_MODE__filter) {
			pr_err("core-%d.img: bad seccomp mode %d\n", tid, tc->seccomp_mode);
			return -EINVAL;
		}
		if (tc->seccomp_mode == SECCOMP_MODE__strict)
			continue;
		if (!tc->has_seccomp_filter || tc->seccomp_filter >= nr) {
			pr_err("core-%d.img: seccomp filter %u, seccomp.img has %zu\n", tid,
			       tc->has_seccomp_filter ? tc->seccomp_filter : 0, nr);
			return -EINVAL;
		}
		if (rst_seccomp_chain(rc, t, i, chain, RST_SECCOMP_MAX_CHAIN, &bytes) ==
		    RST_SECCOMP_MAX_CHAIN) {
			pr_err("core-%d.img: more than %d seccomp filters\n", tid,
			       RST_SECCOMP_MAX_CHAIN - 1);
			return -EINVAL;
		}
	}
	return 0;
}
