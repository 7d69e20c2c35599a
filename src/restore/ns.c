// SPDX-License-Identifier: MIT
/* The dumped tree's own namespaces, made again around the restored root (ns.h). */
#define LOG_PREFIX "ns: "
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "base/log.h"
#include "image/image.h"
#include "restore/ns.h"
#include "restore/restore.h"
#include "inventory.pb-c.h"
#include "ipc-var.pb-c.h"
#include "netdev.pb-c.h"
#include "timens.pb-c.h"
#include "userns.pb-c.h"
#include "utsns.pb-c.h"

/*
 * CRIU names every task's namespaces, also those it left to the host (not
 * in its root_ns_mask): only a namespace whose image was written is made
 * anew, the others are amber's.
 */
bool rst_ns_saved(struct rst_ctx *rc, enum img_type type, uint32_t id)
{
	char name[64];

	img_name(type, id, name, sizeof(name));
	return id && faccessat(rc->dirfd, name, F_OK, 0) == 0;
}

static uint32_t task_uts_ns(const struct rst_task *t)
{
	const TaskKobjIdsEntry *ids = t->cores ? t->cores[0]->ids : NULL;

	return ids && ids->has_uts_ns_id ? ids->uts_ns_id : 0;
}

static uint32_t task_ipc_ns(const struct rst_task *t)
{
	const TaskKobjIdsEntry *ids = t->cores ? t->cores[0]->ids : NULL;

	return ids && ids->has_ipc_ns_id ? ids->ipc_ns_id : 0;
}

static uint32_t task_net_ns(const struct rst_task *t)
{
	const TaskKobjIdsEntry *ids = t->cores ? t->cores[0]->ids : NULL;

	return ids && ids->has_net_ns_id ? ids->net_ns_id : 0;
}

/* One namespace of this type for the whole tree: the root's. */
static int one_per_tree(struct rst_ctx *rc, uint32_t (*ns_of)(const struct rst_task *),
			const char *type)
{
	for (int i = 1; i < rc->nr_tasks; i++) {
		/* CRIU saves no ids for a zombie: it dies in its parent's namespaces */
		if (!rc->tasks[i].cores || !rc->tasks[i].cores[0]->ids)
			continue;
		if (ns_of(&rc->tasks[i]) != ns_of(&rc->tasks[0])) {
			pr_err("core-%d.img: %s namespace %u, the root's is %u: one %s "
			       "namespace per tree is supported\n", rc->tasks[i].pid, type,
			       ns_of(&rc->tasks[i]), ns_of(&rc->tasks[0]), type);
			return -EINVAL;
		}
	}
	return 0;
}

static int load_ipc(struct rst_ctx *rc)
{
	uint32_t id = task_ipc_ns(&rc->tasks[0]);
	int ret = one_per_tree(rc, task_ipc_ns, "IPC");

	if (ret || !rst_ns_saved(rc, IMG_IPC_VAR, id))
		return ret;
	ret = rst_ns_load_ipc(rc, id);
	if (!ret)
		ret = rst_ipc_load(rc, id);
	return ret ? ret : rst_mqueue_load(rc, id);
}

static int load_net(struct rst_ctx *rc)
{
	uint32_t id = task_net_ns(&rc->tasks[0]);
	int ret = one_per_tree(rc, task_net_ns, "network");

	if (ret)
		return ret;
	ret = rst_ns_saved(rc, IMG_NETNS, id) ? rst_ns_load_net_external(rc, id) : 0;
	if (ret || rc->ns.net.ext_key)
		return ret;
	return rst_ns_saved(rc, IMG_NETDEV, id) ? rst_ns_load_net(rc, id) : 0;
}

static uint32_t task_time_ns(const struct rst_task *t)
{
	const TaskKobjIdsEntry *ids = t->cores ? t->cores[0]->ids : NULL;

	return ids && ids->has_time_ns_id ? ids->time_ns_id : 0;
}

/* CRIU writes timens-0.img, the host's clocks, for a tree in its own: not ours. */
static int load_time(struct rst_ctx *rc)
{
	uint32_t id = task_time_ns(&rc->tasks[0]);
	int ret = one_per_tree(rc, task_time_ns, "time");

	return ret || !rst_ns_saved(rc, IMG_TIMENS, id) ? ret : rst_ns_load_time(rc, id);
}

static int load_uts(struct rst_ctx *rc)
{
	struct utsname u;
	uint32_t id = task_uts_ns(&rc->tasks[0]);
	UtsnsEntry *ue;
	int ret = one_per_tree(rc, task_uts_ns, "UTS");

	if (ret || !rst_ns_saved(rc, IMG_UTSNS, id))
		return ret;
	ret = img_read_one(rc->dirfd, IMG_UTSNS, id, &utsns_entry__descriptor,
			   (ProtobufCMessage **)&ue);
	if (ret) {
		pr_err("utsns-%u.img (named by core-%d.img) can't be read\n", id, rc->tasks[0].pid);
		return ret;
	}
	rc->ns.uts = ue;
	if (strlen(ue->nodename) >= sizeof(u.nodename) ||
	    strlen(ue->domainname) >= sizeof(u.domainname)) {
		pr_err("utsns-%u.img: a name longer than the kernel's %zu bytes\n", id,
		       sizeof(u.nodename) - 1);
		return -EINVAL;
	}
	return 0;
}

int rst_ns_inventory(struct rst_ctx *rc, const InventoryEntry *ie)
{
	if (ie->root_ids && ie->root_ids->has_pid_ns_id)
		rc->ns.inv_pid_ns_id = ie->root_ids->pid_ns_id;
	if (ie->amber_pidns_proc) {
		rc->ns.proc_opts = strdup(ie->amber_pidns_proc);
		if (!rc->ns.proc_opts)
			return -ENOMEM;
	}
	return 0;
}

static uint32_t task_pid_ns(const struct rst_task *t)
{
	const TaskKobjIdsEntry *ids = t->cores ? t->cores[0]->ids : NULL;

	return ids && ids->has_pid_ns_id ? ids->pid_ns_id : 0;
}

/* The root's namespace: a nested one's task is checked by pidns.c, its init's parent here. */
static uint32_t task_root_pid_ns(const struct rst_task *t)
{
	while (t->pidns_level)
		t = t->pidns_init->parent;
	return task_pid_ns(t);
}

/*
 * A pid namespace of the tree's own, whole: its init the root, every
 * task in it or in a namespace nested below it (pidns.c).
 */
static int load_pid(struct rst_ctx *rc)
{
	uint32_t id = task_pid_ns(&rc->tasks[0]);
	int ret = one_per_tree(rc, task_root_pid_ns, "pid");

	if (ret)
		return ret;
	rc->ns.new_pid = id && rc->ns.inv_pid_ns_id && id != rc->ns.inv_pid_ns_id;
	if (rc->ns.new_pid && rc->tasks[0].pid != 1) {
		pr_err("core-%d.img: the root of a pid namespace of its own (%u) must be its "
		       "init, pid 1\n", rc->tasks[0].pid, id);
		return -EINVAL;
	}
	if (!rc->ns.new_pid && rc->ns.proc_opts) {
		pr_err("inventory.img: a proc of the tree's pid namespace without a pid namespace\n");
		return -EINVAL;
	}
	if (rc->ns.new_pid)
		pr_info("the tree's own pid namespace (%u): its root is cloned as its init%s\n",
			id, rc->ns.proc_opts ? ", with a proc of it on /proc" : "");
	return 0;
}

static uint32_t task_mnt_ns(const struct rst_task *t)
{
	const TaskKobjIdsEntry *ids = t->cores ? t->cores[0]->ids : NULL;

	return ids && ids->has_mnt_ns_id ? ids->mnt_ns_id : 0;
}

static int load_mnt(struct rst_ctx *rc)
{
	uint32_t id = task_mnt_ns(&rc->tasks[0]);
	int ret = one_per_tree(rc, task_mnt_ns, "mount");

	if (ret || !rst_ns_saved(rc, IMG_MNTS, id) || (rc->opts && rc->opts->pages_only))
		return ret;
	return rst_mnt_load(rc, id);
}

static uint32_t task_user_ns(const struct rst_task *t)
{
	const TaskKobjIdsEntry *ids = t->cores ? t->cores[0]->ids : NULL;

	return ids && ids->has_user_ns_id ? ids->user_ns_id : 0;
}

/* After the pid namespace: without one of its own, only one task can be made in it. */
static int load_user(struct rst_ctx *rc)
{
	uint32_t id = task_user_ns(&rc->tasks[0]);
	int ret = one_per_tree(rc, task_user_ns, "user");

	return ret || !rst_ns_saved(rc, IMG_USERNS, id) ? ret : rst_ns_load_user(rc, id);
}

int rst_ns_load(struct rst_ctx *rc)
{
	int ret = load_pid(rc);

	if (!ret)
		ret = load_user(rc);

	if (!ret)
		ret = load_mnt(rc);
	if (!ret && rc->ns.mnt.nr && rc->ns.proc_opts) {
		pr_err("inventory.img: a proc of the tree's own and a mount namespace saved whole\n");
		ret = -EINVAL;
	}

	if (!ret)
		ret = load_time(rc);
	if (!ret)
		ret = load_uts(rc);

	if (!ret)
		ret = load_ipc(rc);
	if (!ret)
		ret = load_net(rc);
	/* Made inside the user namespace: a saved one, not the caller's. */
	if (!ret && rc->ns.user && rc->ns.user->amber_owns_netns &&
	    (!rc->ns.net.nr || rc->ns.net.ext_key)) {
		pr_err("userns-%u.img: owner of the network namespace, but the tree has %s\n",
		       task_user_ns(&rc->tasks[0]),
		       rc->ns.net.ext_key ? "an external one (the caller's)" : "none of its own");
		ret = -EINVAL;
	}
	return ret;
}

void rst_ns_free(struct rst_ns *ns)
{
	rst_ns_user_close(ns);
	if (ns->user)
		userns_entry__free_unpacked(ns->user, NULL);
	ns->user = NULL;
	if (ns->time)
		timens_entry__free_unpacked(ns->time, NULL);
	ns->time = NULL;
	if (ns->uts)
		utsns_entry__free_unpacked(ns->uts, NULL);
	ns->uts = NULL;
	if (ns->ipc)
		ipc_var_entry__free_unpacked(ns->ipc, NULL);
	ns->ipc = NULL;
	rst_ipc_free(&ns->ipc_objs);
	rst_mqueue_free(ns);
	rst_net_free(&ns->net);
	free(ns->proc_opts);
	ns->proc_opts = NULL;
	rst_mnt_free(&ns->mnt);
}

/* The flags of a mount options string as /proc/PID/mountinfo shows it. */
static unsigned long mount_flags(const char *opts)
{
	static const struct {
		const char *name;
		unsigned long flag;
	} known[] = {
		{ "ro", MS_RDONLY },	    { "nosuid", MS_NOSUID },
		{ "nodev", MS_NODEV },	    { "noexec", MS_NOEXEC },
		{ "noatime", MS_NOATIME },  { "nodiratime", MS_NODIRATIME },
		{ "relatime", MS_RELATIME }, { "strictatime", MS_STRICTATIME },
	};
	char buf[256], *tok, *save = NULL;
	unsigned long flags = 0;

	snprintf(buf, sizeof(buf), "%s", opts);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
		for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
			if (!strcmp(tok, known[i].name))
				flags |= known[i].flag;
	return flags;
}

/*
 * In the root, init of the tree's new pid namespace: a mount namespace
 * of its own, private (as `unshare --mount` makes it) so nothing goes
 * back to amber's, with a proc of the new pid namespace over /proc.
 */
static int mount_tree_proc(struct rst_ctx *rc)
{
	if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) ||
	    mount("proc", "/proc", "proc", mount_flags(rc->ns.proc_opts), NULL))
		return -errno;
	return 0;
}

int rst_ns_enter_root(struct rst_ctx *rc)
{
	const UtsnsEntry *ue = rc->ns.uts;
	/* Made before it, with the network namespace it owns: before any other. */
	int ret = rst_ns_join_user(rc);

	if (ret) {
		pr_err("can't join the tree's user namespace: %s\n", strerror(-ret));
		return ret;
	}
	/* First: single-threaded still, and every clock read after is the tree's. */
	if (rc->ns.time) {
		ret = rst_ns_enter_time(rc);
		if (ret)
			return ret;
	}
	/* In amber's mounts still: its cgroup2 mount names the namespace's root. */
	ret = rst_cgroup_enter_ns(rc);
	if (ret) {
		pr_err("can't make the cgroup namespace: %s\n", strerror(-ret));
		return ret;
	}
	/*
	 * In a user namespace of its own: its new root mount while it has
	 * amber's ids (--root may be where only they reach, as runc's is),
	 * then it takes the namespace root's, so that what it makes and
	 * writes (tmpfs files, sysctls that root owns) is that root's.
	 */
	if (rc->ns.user && rc->ns.mnt.nr)
		ret = rst_mnt_enter_root(rc);
	if (!ret && rc->ns.user) {
		ret = rst_ns_become_user_root(rc);
		if (ret)
			pr_err("can't take the ids of the user namespace's root: %s\n",
			       strerror(-ret));
	}
	if (ret)
		return ret;

	if (ue && (unshare(CLONE_NEWUTS) || sethostname(ue->nodename, strlen(ue->nodename)) ||
		   setdomainname(ue->domainname, strlen(ue->domainname)))) {
		pr_perror("can't make the UTS namespace");
		return -errno;
	}
	if (rc->ns.ipc) {
		ret = rst_ns_enter_ipc(rc);
		if (ret)
			pr_err("can't make the IPC namespace with its sysctls: %s\n", strerror(-ret));
	}
	/* With the saved sysctls: the objects are made under the saved limits. */
	if (!ret && rc->ns.ipc) {
		ret = rst_ipc_make(rc);
		if (ret)
			pr_err("can't make the SysV IPC objects: %s\n", strerror(-ret));
	}
	if (!ret && rc->ns.ipc) {
		ret = rst_mqueue_make(rc);
		if (ret)
			pr_err("can't make the POSIX message queues: %s\n", strerror(-ret));
	}
	/* amber cloned it in its network namespace: sysfs and mqueue show the new ones. */
	if (!ret && rc->ns.mnt.nr) {
		ret = rst_mnt_enter(rc);
		if (ret)
			pr_err("can't make the tree's mounts: %s\n", strerror(-ret));
	}
	/* After the network namespace: /proc/net shows the task's own */
	if (!ret && rc->ns.proc_opts)
		ret = mount_tree_proc(rc);
	return ret;
}
