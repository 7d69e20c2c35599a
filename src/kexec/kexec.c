// SPDX-License-Identifier: MIT
/*
 * amber kexec: dump a tree into a PKRAM store, preserve it, load the next
 * kernel and kexec into it; amber restore --pkram brings the tree back
 * there. The order keeps the tree safe: it is frozen and dumped, then,
 * still frozen, the images are checked, the store preserved and the kernel
 * loaded (dump's frozen hook). Any failure up to the reboot undoes what
 * was done (kernel unloaded, store read-write again and unmounted) and the
 * tree runs on as it was; it never runs on after the dump that goes across.
 *
 * With --preserve-mount (the tree's own pkram= tmpfs, mounts.c) the
 * kernel refuses to preserve that tmpfs while the frozen tree holds a file
 * on it open for writing, so the order changes: checked and store
 * preserved while frozen, the tree then ends with the dump, its mounts
 * are preserved and the kernel loaded. A failure after that point undoes
 * the preserves and restores the tree in place from the store (its files
 * are still where they were), so nothing is lost either.
 *
 * With --prev-images-dir the store is the one amber pre-dump --pkram made
 * (the pre-dumps in its directories) and the final dump goes into its
 * top, saving only what was written since the last pre-dump; the chain
 * is checked before the freeze and folded into real directories before
 * the preserve (chain.c). A failure leaves the store mounted with the
 * pre-dumps as they were; only the final dump's files are removed.
 */
#define LOG_PREFIX "kexec: "
#include <errno.h>
#include <limits.h>
#include <linux/reboot.h>
#include <stdio.h>
#include <string.h>
#include <sys/reboot.h>
#include <unistd.h>

#include "base/fault.h"
#include "base/log.h"
#include "base/util.h"
#include "kexec/kexec.h"

struct kexec_ctx {
	const struct kexec_opts *o;
	struct kexec_store *store;
	struct kexec_mounts *own; /* --preserve-mount */
	struct kexec_chain *chain; /* --prev-images-dir */
};

/* The store read-write again and its chain unfolded: as before the preserve. */
static void undo_store(struct kexec_ctx *kc)
{
	if (kexec_store_unpreserve(kc->store)) {
		pr_warn("the store stays preserved: `mount -o remount,rw %s` drops it\n",
			kc->store->dir);
		return; /* read-only: nothing can be renamed back */
	}
	kexec_chain_unfold(kc->chain, kc->store->dirfd);
}

/* Loads the next kernel and reboots into it; returns only on a failure, all undone. */
static int load_and_reboot(struct kexec_ctx *kc, unsigned long pfn)
{
	const struct kexec_opts *o = kc->o;
	int ret;

	ret = fault_injected("kexec-load") ? -EIO
		: kexec_load_kernel(o->kernel, o->initrd, o->append, pfn);
	if (ret)
		goto undo_preserve;
	if (o->no_reboot) {
		pr_info("kernel loaded, not rebooting (--no-reboot)\n");
		return 0;
	}
	pr_msg("kexec: store '%s' preserved, kernel %s loaded: rebooting into it\n",
	       kc->store->name, o->kernel);
	sync();
	/* Does not return on success: the next kernel takes over. */
	reboot(LINUX_REBOOT_CMD_KEXEC);
	ret = -errno;
	pr_perror("reboot(LINUX_REBOOT_CMD_KEXEC) failed");
	kexec_unload_kernel();
undo_preserve:
	kexec_mounts_unpreserve(kc->own);
	undo_store(kc);
	return ret;
}

/* The tree is frozen and every image written: make everything ready. */
static int kexec_frozen(void *arg)
{
	struct kexec_ctx *kc = arg;
	unsigned long pfn;
	int ret;

	pr_info("every image written, the tree frozen: checking, preserving, loading\n");
	ret = kexec_verify(kc->store->dirfd, false);
	if (!ret)
		ret = kexec_chain_recheck(kc->chain);
	if (!ret)
		ret = kexec_mounts_record(kc->own, kc->store->dirfd, kc->store->name);
	if (!ret)
		ret = kexec_chain_fold(kc->chain, kc->store->dirfd);
	if (ret)
		return ret;
	ret = fault_injected("kexec-preserve") ? -EIO : kexec_store_preserve(kc->store, &pfn);
	if (ret) {
		kexec_chain_unfold(kc->chain, kc->store->dirfd);
		return ret;
	}
	/* the tree's own mounts wait until it is gone (kexec_run) */
	if (kc->own->nr)
		return 0;
	return load_and_reboot(kc, pfn);
}

/*
 * The killed root stays a zombie until its parent (not amber) reaps it,
 * and its pid is not free for the restore until then.
 */
static void wait_pid_gone(pid_t pid)
{
	char path[32];

	snprintf(path, sizeof(path), "/proc/%d", pid);
	for (int i = 0; i < 1000 && !access(path, F_OK); i++)
		usleep(10000);
}

/*
 * The dumped tree is gone: preserve its own mounts, load, reboot. On a
 * failure everything is undone and the tree restored in place.
 */
static int preserve_own_and_reboot(struct kexec_ctx *kc)
{
	const struct kexec_opts *o = kc->o;
	struct restore_opts r = {
		.dir = kc->store->dir,
		.detach = true,
		.shell_job = o->dump.shell_job,
		.ext_unix_sk = o->dump.ext_unix_sk,
		.file_locks = o->dump.file_locks,
		.tcp_established = o->dump.tcp_established,
		.network_lock = o->dump.network_lock,
	};
	unsigned long pfn;
	pid_t root;
	int ret, rret;

	ret = fault_injected("kexec-preserve-mount") ? -EIO : kexec_mounts_preserve(kc->own, &pfn);
	if (!ret)
		ret = load_and_reboot(kc, pfn);
	else
		undo_store(kc);
	if (!ret)
		return 0; /* --no-reboot */
	pr_err("the kexec failed after the tree was dumped: restoring it in place from %s\n",
	       kc->store->dir);
	wait_pid_gone(o->dump.pid);
	rret = restore_run(&r, &root, NULL);
	if (rret) {
		pr_err("the restore in place failed too: the images stay in %s (amber restore -D "
		       "%s)\n", kc->store->dir, kc->store->dir);
		return ret;
	}
	pr_msg("kexec: failed (%s); the tree runs on, restored in place (root pid %d)\n",
	       strerror(-ret), root);
	return ret;
}

int kexec_run(struct kexec_opts *o)
{
	struct kexec_store store;
	struct kexec_mounts own = { .nr = 0 };
	struct kexec_chain chain = { .nr = 0 };
	struct kexec_ctx kc = { .o = o, .store = &store, .own = &own, .chain = &chain };
	int ret;

	ret = kexec_store_name_ok(o->name);
	if (ret)
		return ret;
	/* What can be checked before anything is frozen, is. */
	ret = kexec_check_kernel(o->kernel);
	if (ret)
		return ret;
	if (o->initrd && access(o->initrd, R_OK)) {
		pr_perror("can't read the initrd %s", o->initrd);
		return -errno;
	}
	ret = kexec_mounts_adopt(&own, o->preserve_mounts);
	if (ret)
		return ret;
	ret = o->prev_dir ? kexec_store_reuse(&store, o->name, false)
			  : kexec_store_create(&store, o->name);
	if (!ret && o->prev_dir) {
		ret = kexec_chain_check(&chain, &store, o->prev_dir);
		if (ret)
			kexec_store_close(&store, false);
	}
	if (ret) {
		kexec_mounts_close(&own);
		return ret;
	}
	o->dump.dir = store.dir;
	o->dump.prev_dir = o->prev_dir;
	o->dump.leave_running = false;
	o->dump.frozen_hook = kexec_frozen;
	o->dump.frozen_hook_arg = &kc;
	ret = dump_run(&o->dump);
	if (ret) {
		pr_err("nothing was preserved; the tree runs on as it was\n");
		if (store.kept) {
			kexec_store_clear_top(&store);
			pr_err("the pre-dumps stay in %s as they were\n", store.dir);
		}
		kexec_store_close(&store, true);
		kexec_mounts_close(&own);
		kexec_chain_free(&chain);
		return ret;
	}
	if (own.nr) {
		ret = preserve_own_and_reboot(&kc);
		kexec_mounts_close(&own);
		if (ret) {
			/* restored in place or not, the images are kept */
			kexec_store_close(&store, false);
			kexec_chain_free(&chain);
			return ret;
		}
	}
	kexec_chain_free(&chain);
	/* --no-reboot: the tree is gone, its images wait in the preserved store */
	pr_msg("kexec: tree dumped into the preserved store '%s' (%s) and the next kernel "
	       "loaded; `kexec -e` boots it, then `amber restore --pkram %s`\n", store.name,
	       store.dir, store.name);
	kexec_store_close(&store, false);
	return 0;
}

int kexec_restore(struct restore_opts *r, const char *name, pid_t *root_pid, int *wait_status)
{
	struct kexec_store store;
	struct kexec_mounts own;
	int ret = kexec_store_find(&store, name);

	if (ret)
		return ret;
	ret = kexec_verify_chain(store.dirfd, true);
	if (!ret)
		ret = kexec_mounts_find(&own, store.dirfd);
	if (!ret)
		kexec_mounts_close(&own); /* they stay mounted: the tree's files are there */
	if (ret) {
		pr_err("store '%s' refused, nothing restored; it stays mounted at %s\n", name,
		       store.dir);
		kexec_store_close(&store, false);
		return ret;
	}
	r->dir = store.dir;
	r->pages_verified = true;
	ret = restore_run(r, root_pid, wait_status);
	/* The memory is in the tree now; a lazy restore still reads the store. */
	kexec_store_close(&store, !ret && !r->lazy);
	return ret;
}

int kexec_lazy(struct lazy_opts *l, const char *name)
{
	struct kexec_store store;
	int ret = kexec_store_find(&store, name);

	/* the daemon checks every entry's checksum as it starts */
	if (!ret)
		ret = kexec_verify_chain(store.dirfd, false);
	if (!ret) {
		struct kexec_mounts own;

		ret = kexec_mounts_find(&own, store.dirfd);
		if (!ret)
			kexec_mounts_close(&own);
	}
	if (ret) {
		if (store.mounted)
			kexec_store_close(&store, false);
		return ret;
	}
	l->dir = store.dir;
	ret = lazy_daemon_run(l);
	kexec_store_close(&store, !ret);
	return ret;
}

/* -D of pre-dump --pkram: a path below the store's top, with no "." or ".." in it. */
static bool store_rel_ok(const char *rel)
{
	char abs[PATH_MAX];

	if (!rel || !*rel || rel[0] == '/' || strlen(rel) + 2 > sizeof(abs))
		return false;
	snprintf(abs, sizeof(abs), "/%s", rel);
	return path_no_dots(abs) && strspn(rel, "/") < strlen(rel);
}

int kexec_predump(struct dump_opts *d, const char *name)
{
	struct kexec_store store;
	char dir[PATH_MAX * 2];
	int ret;

	if (!store_rel_ok(d->dir)) {
		pr_err("-D %s: with --pkram, a directory below the store's top (e.g. pre1)\n",
		       d->dir ? d->dir : "");
		return -EINVAL;
	}
	ret = kexec_store_reuse(&store, name, true);
	if (ret)
		return ret;
	snprintf(dir, sizeof(dir), "%s/%s", store.dir, d->dir);
	d->dir = dir;
	ret = predump_run(d);
	if (!ret)
		pr_msg("pre-dump: images in %s; the final dump: amber kexec --pkram %s "
		       "--prev-images-dir %s ...\n", dir, name, dir + strlen(store.dir) + 1);
	/* a store this pre-dump mounted holds nothing else: it goes if it failed */
	kexec_store_close(&store, ret && !store.kept);
	return ret;
}
