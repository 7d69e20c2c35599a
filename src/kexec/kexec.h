/* SPDX-License-Identifier: MIT */
#ifndef AMBER_KEXEC_H
#define AMBER_KEXEC_H

/*
 * amber kexec: a tree carried across a kernel update in memory, without a
 * disk (docs/pkram.md). The images go into a tmpfs mounted with
 * pkram=NAME (the PKRAM series of kernel/), which is preserved across
 * kexec and mounted again by name in the next kernel.
 *
 *   store.c   create, find and preserve the store (a tmpfs by name)
 *   verify.c  check an image set before preserving and after finding it
 *   load.c    kexec_file_load() of the next kernel, command line + pkram=PFN
 *   chain.c   pre-dumps in the store under the final dump: checked, folded
 *   kexec.c   the verb: dump frozen -> verify -> preserve -> load -> reboot;
 *             restore and lazy-pages from a store; pre-dump into a store
 */
#include <limits.h>
#include <stdbool.h>
#include <sys/types.h>

#include "dump/dump.h"
#include "lazy/lazy.h"
#include "restore/restore.h"

#define KEXEC_STORE_ROOT "/run/amber/pkram"
#define KEXEC_NAME_MAX	 47 /* PKRAM_NAME_LEN - 1 in the kernel */

struct kexec_store {
	char name[KEXEC_NAME_MAX + 1];
	char dir[PATH_MAX];
	int dirfd;
	bool mounted;	/* a store is mounted at dir (by us or found there) */
	bool preserved; /* remounted preserve,ro: undone by kexec_store_unpreserve() */
	bool own;	/* a tmpfs of the tree's (--preserve-mount), not an image store */
	bool kept;	/* mounted before amber kexec (pre-dumps in it): never unmounted */
};

/* [A-Za-z0-9._-], 1..KEXEC_NAME_MAX characters, not "." or "..". */
int kexec_store_name_ok(const char *name);
/*
 * Mounts an empty tmpfs with pkram=@name at KEXEC_STORE_ROOT/@name for a
 * new image set. -EEXIST if something is mounted there already, -EOPNOTSUPP
 * if this kernel has no PKRAM.
 */
int kexec_store_create(struct kexec_store *s, const char *name);
/*
 * The store @name mounted already (by amber pre-dump --pkram), for a final
 * dump over the pre-dumps in it; or, with @create, mounted now if it is
 * not. -ENOENT if it is not mounted and not @create.
 */
int kexec_store_reuse(struct kexec_store *s, const char *name, bool create);
/* Removes the files of the store's top (a failed final dump's), not its directories. */
void kexec_store_clear_top(struct kexec_store *s);
/*
 * The store @name preserved by the previous kernel: mounted by name (or
 * found already mounted at its place). -ENOENT if it came back empty.
 */
int kexec_store_find(struct kexec_store *s, const char *name);
/*
 * A tmpfs the tree's files live on (a VMM's guest RAM file), mounted by
 * the user with pkram=NAME at @dir: preserved with the store, mounted
 * again at @dir before the restore. Never unmounted by amber.
 */
int kexec_store_adopt(struct kexec_store *s, const char *dir);
/* In the next kernel: that tmpfs @name mounted again at @dir (or found there). */
int kexec_store_find_at(struct kexec_store *s, const char *name, const char *dir);
/* remount,preserve,ro; the super block pfn for the next kernel's pkram=. */
int kexec_store_preserve(struct kexec_store *s, unsigned long *pfn);
/* Back to read-write, which drops the saved tree. */
int kexec_store_unpreserve(struct kexec_store *s);
/* Closes; unmounts too if @umount, unless the store is preserved. */
void kexec_store_close(struct kexec_store *s, bool umount);

/*
 * The image set in @dirfd as amber kexec needs it: amber.sums present and
 * matching, every pagemap consistent with its pages file; @deep also reads
 * every page and checks its checksum. 0 or -errno with a message.
 */
int kexec_verify(int dirfd, bool deep);
/* The same for @dirfd and each parent image below it (DIR/parent, ...). */
int kexec_verify_chain(int dirfd, bool deep);

/* The pre-dumps under the final dump (chain.c). */
#define KEXEC_CHAIN_MAX 16
struct kexec_layer {
	char rel[PATH_MAX];  /* its directory, relative to the store */
	char link[PATH_MAX]; /* its child's "parent" link (as --prev-images-dir said) */
	char base[NAME_MAX + 1];
	int fd;		     /* the layer's directory */
	int updirfd;	     /* the directory it was in (for the unfold) */
};

struct kexec_chain {
	struct kexec_layer *l; /* [0]: the final dump's parent */
	int nr;
	int folded; /* layers renamed into their child's "parent" */
};

/*
 * Before the freeze: @prev (relative to the store's top) and its parents,
 * each in the store and matching its amber.sums; nothing else in the
 * store the kernel would refuse to preserve. 0 or -errno with a message.
 */
int kexec_chain_check(struct kexec_chain *c, const struct kexec_store *s, const char *prev);
/* Frozen, before the fold: each layer still matches its amber.sums. */
int kexec_chain_recheck(const struct kexec_chain *c);
/* Each layer renamed to its child's "parent" (no symlink left); all undone on a failure. */
int kexec_chain_fold(struct kexec_chain *c, int storefd);
void kexec_chain_unfold(struct kexec_chain *c, int storefd);
void kexec_chain_free(struct kexec_chain *c);

/* Refuses, before anything is frozen, a file that is no x86 bzImage. */
int kexec_check_kernel(const char *path);
/*
 * The next kernel's command line: @cur (/proc/cmdline) without pkram=,
 * kaslr and nokaslr, then @append, then "pkram=@pfn nokaslr".
 */
int kexec_cmdline(char *buf, size_t len, const char *cur, const char *append, unsigned long pfn);
/* kexec_file_load() of @kernel (+ @initrd) with that command line. */
int kexec_load_kernel(const char *kernel, const char *initrd, const char *append,
		      unsigned long pfn);
void kexec_unload_kernel(void);

/* The tree's own pkram= tmpfs mounts (mounts.c). */
#define KEXEC_MOUNTS_MAX 8
struct kexec_mounts {
	struct kexec_store s[KEXEC_MOUNTS_MAX];
	int nr;
};

/* --preserve-mount DIR...: each the root of a tmpfs mounted with pkram=NAME. */
int kexec_mounts_adopt(struct kexec_mounts *m, const char *const *paths);
/* Writes the store's kexec-mounts (nothing if there are none). */
int kexec_mounts_record(const struct kexec_mounts *m, int storefd, const char *store_name);
/* Preserves each; all undone on a failure. @pfn: the super block's. */
int kexec_mounts_preserve(struct kexec_mounts *m, unsigned long *pfn);
void kexec_mounts_unpreserve(struct kexec_mounts *m);
/* In the next kernel: the store's kexec-mounts mounted again where they were. */
int kexec_mounts_find(struct kexec_mounts *m, int storefd);
void kexec_mounts_close(struct kexec_mounts *m);

struct kexec_opts {
	struct dump_opts dump; /* pid, options; dir is the store's */
	const char *name;      /* --pkram */
	const char *kernel, *initrd, *append;
	bool no_reboot;
	/* --preserve-mount: the tree's own pkram= tmpfs mounts, NULL-terminated */
	const char *const *preserve_mounts;
	/* --prev-images-dir: the last pre-dump, in the store, relative to its top */
	const char *prev_dir;
};

int kexec_run(struct kexec_opts *o);
/* amber pre-dump --pkram NAME: @d->dir is relative to the store (mounted if it is not). */
int kexec_predump(struct dump_opts *d, const char *name);
/* amber restore --pkram: @r->dir is set to the store's directory. */
int kexec_restore(struct restore_opts *r, const char *name, pid_t *root_pid, int *wait_status);
/* amber lazy-pages --pkram */
int kexec_lazy(struct lazy_opts *l, const char *name);

#endif
