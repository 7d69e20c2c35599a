/* SPDX-License-Identifier: MIT */
#ifndef AMBER_KERNDAT_H
#define AMBER_KERNDAT_H

/*
 * What this kernel offers amber, probed once into one table. Each probe
 * really exercises the feature (a soft-dirty probe writes a page, clears
 * the bits and reads them back: on kernels without CONFIG_MEM_SOFT_DIRTY
 * writing "4" to clear_refs silently does nothing).
 */
#include <stdbool.h>

enum kd_feature {
	KD_PTRACE_SEIZE,
	KD_COMPEL,
	KD_UFFD,
	KD_UFFD_WP,
	KD_UFFD_WP_ASYNC,
	KD_UFFD_EVENTS,
	KD_PAGEMAP_SCAN,
	KD_SOFT_DIRTY,
	KD_PIDFD_GETFD,
	KD_CLONE3_SET_TID,
	KD_KEXEC,
	KD_PKRAM,
	KD_NR_FEATURES,
};

struct kd_result {
	bool ok;
	char detail[160]; /* what was seen, or what is missing and what brings it */
};

struct kerndat {
	struct kd_result f[KD_NR_FEATURES];
};

const char *kd_name(enum kd_feature f);
int kd_lookup(const char *name);
void kerndat_probe(struct kerndat *kd);
/* Only one feature (cheaper): */
void kerndat_probe_one(struct kerndat *kd, enum kd_feature f);

#endif
