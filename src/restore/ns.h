/* SPDX-License-Identifier: MIT */
#ifndef AMBER_RESTORE_NS_H
#define AMBER_RESTORE_NS_H

struct rst_ctx;
struct UtsnsEntry;

/*
 * The namespaces the dumped tree had of its own (dump/ns.h): today a UTS
 * namespace, named by the root's ids.uts_ns_id with its utsns-<id>.img.
 * The restored root makes a new one before it forks its children.
 */
struct rst_ns {
	struct UtsnsEntry *uts; /* NULL: the tree lives in amber's */
};

/* Reads and checks the images; a bad one is refused, naming it. */
int rst_ns_load(struct rst_ctx *rc);
void rst_ns_free(struct rst_ns *ns);
/* In the restored root, before anything else: its new namespaces. */
int rst_ns_enter_root(struct rst_ctx *rc);

#endif
