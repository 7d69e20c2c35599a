// SPDX-License-Identifier: MIT
/*
 * amber kexec: dump a tree into a PKRAM store, preserve it, load the next
 * kernel and kexec into it; amber restore --pkram brings the tree back
 * there. The order keeps the tree safe: it is frozen and dumped, then,
 * still frozen, the images are checked, the store preserved and the kernel
 * loaded (dump's frozen hook). Any failure up to the reboot undoes what
 * was done (kernel unloaded, store read-write again and unmounted) and the
 * tree runs on as it was; it never runs on after the dump that goes across.
 */
#define LOG_PREFIX "kexec: "
#include <errno.h>
#include <linux/reboot.h>
#include <string.h>
#include <sys/reboot.h>
#include <unistd.h>

#include "base/fault.h"
#include "base/log.h"
#include "kexec/kexec.h"

struct kexec_ctx {
	const struct kexec_opts *o;
	struct kexec_store *store;
};

/* The tree is frozen and every image written: make everything ready. */
static int kexec_frozen(void *arg)
{
	struct kexec_ctx *kc = arg;
	const struct kexec_opts *o = kc->o;
	unsigned long pfn;
	int ret;

	pr_info("every image written, the tree frozen: checking, preserving, loading\n");
	ret = kexec_verify(kc->store->dirfd, false);
	if (ret)
		return ret;
	ret = fault_injected("kexec-preserve") ? -EIO : kexec_store_preserve(kc->store, &pfn);
	if (ret)
		return ret;
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
	if (kexec_store_unpreserve(kc->store))
		pr_warn("the store stays preserved: `mount -o remount,rw %s` drops it\n",
			kc->store->dir);
	return ret;
}

int kexec_run(struct kexec_opts *o)
{
	struct kexec_store store;
	struct kexec_ctx kc = { .o = o, .store = &store };
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
	ret = kexec_store_create(&store, o->name);
	if (ret)
		return ret;
	o->dump.dir = store.dir;
	o->dump.leave_running = false;
	o->dump.frozen_hook = kexec_frozen;
	o->dump.frozen_hook_arg = &kc;
	ret = dump_run(&o->dump);
	if (ret) {
		pr_err("nothing was preserved; the tree runs on as it was\n");
		kexec_store_close(&store, true);
		return ret;
	}
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
	int ret = kexec_store_find(&store, name);

	if (ret)
		return ret;
	ret = kexec_verify(store.dirfd, true);
	if (ret) {
		pr_err("store '%s' refused, nothing restored; it stays mounted at %s\n", name,
		       store.dir);
		kexec_store_close(&store, false);
		return ret;
	}
	r->dir = store.dir;
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
		ret = kexec_verify(store.dirfd, false);
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
