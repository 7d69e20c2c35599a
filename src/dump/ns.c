// SPDX-License-Identifier: MIT
/* The tree's own namespaces: what a restore needs to make them again (ns.h). */
#define LOG_PREFIX "ns: "
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "dump/dump.h"
#include "dump/ns.h"
#include "dump/unsupported.h"
#include "image/image.h"
#include "core.pb-c.h"
#include "utsns.pb-c.h"

static int same_ns(pid_t pid, const char *type, bool *same)
{
	char path[64];
	struct stat theirs, mine;

	snprintf(path, sizeof(path), "/proc/self/ns/%s", type);
	if (stat(path, &mine))
		return -errno;
	snprintf(path, sizeof(path), "/proc/%d/ns/%s", pid, type);
	if (stat(path, &theirs)) {
		pr_perror("can't read %s", path);
		return -errno;
	}
	*same = theirs.st_ino == mine.st_ino && theirs.st_dev == mine.st_dev;
	return 0;
}

/*
 * uname() answers for the caller's UTS namespace: this thread enters the
 * tree's for the call and comes back (setns of a UTS namespace is per
 * thread, allowed in a threaded process).
 */
static int read_uts(pid_t pid, struct utsname *u)
{
	char path[64];
	int mine, theirs, ret = 0;

	mine = open("/proc/thread-self/ns/uts", O_RDONLY | O_CLOEXEC);
	snprintf(path, sizeof(path), "/proc/%d/ns/uts", pid);
	theirs = open(path, O_RDONLY | O_CLOEXEC);
	if (mine < 0 || theirs < 0) {
		ret = -errno;
		pr_perror("can't open the UTS namespaces of amber and %d", pid);
		goto out;
	}
	if (setns(theirs, CLONE_NEWUTS)) {
		ret = -errno;
		pr_perror("can't enter the UTS namespace of %d", pid);
		goto out;
	}
	if (uname(u))
		ret = -errno;
	if (setns(mine, CLONE_NEWUTS)) {
		/* Every later uname() of amber would lie: nothing safe to do. */
		pr_perror("can't return to amber's UTS namespace");
		ret = -errno;
	}
out:
	if (mine >= 0)
		close(mine);
	if (theirs >= 0)
		close(theirs);
	return ret;
}

static int dump_uts(struct dump_ctx *dc, pid_t root)
{
	UtsnsEntry ue = UTSNS_ENTRY__INIT;
	struct utsname u;
	bool same = true;
	int ret = same_ns(root, "uts", &same);

	if (ret || same)
		return ret;
	ret = read_uts(root, &u);
	if (ret)
		return ret;
	dc->ns.uts_ns_id = dump_new_id(dc);
	dc->ns.amber_uts_ns_id = dump_new_id(dc);
	ue.nodename = u.nodename;
	ue.domainname = u.domainname;
	pr_info("UTS namespace of %d: %s (domain %s), utsns-%u.img\n", root, u.nodename,
		u.domainname, dc->ns.uts_ns_id);
	return img_write_one(dc->dirfd, IMG_UTSNS, dc->ns.uts_ns_id, &ue.base);
}

/* The inode of /proc/@pid/@rel (a namespace link): 0 if it can't be read. */
static ino_t ns_ino(pid_t pid, const char *rel)
{
	char path[PATH_MAX];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/%d/%s", pid, rel);
	return stat(path, &st) ? 0 : st.st_ino;
}

/*
 * The mount options of the last proc on /proc in the root's mount
 * namespace, if that proc shows the tree's pid namespace: its /proc/1 is
 * the root (`unshare --pid --fork --mount-proc`). The host's /proc, seen
 * by a tree without a mount namespace of its own, is left alone.
 */
static int find_tree_proc(struct dump_ctx *dc, pid_t root)
{
	cleanup_free char *buf = NULL;
	char *line, *save = NULL;

	if (ns_ino(root, "ns/mnt") == ns_ino(getpid(), "ns/mnt") ||
	    ns_ino(root, "root/proc/1/ns/pid") != ns_ino(root, "ns/pid"))
		return 0;
	buf = read_proc(root, "mountinfo", NULL);
	if (!buf)
		return -errno;
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char mnt[64], opts[256], fs[64];

		/* id parent maj:min root mountpoint options ... - fstype source */
		if (sscanf(line, "%*d %*d %*s %*s %63s %255s", mnt, opts) != 2 ||
		    !strstr(line, " - ") || sscanf(strstr(line, " - "), " - %63s", fs) != 1)
			continue;
		if (!strcmp(mnt, "/proc") && !strcmp(fs, "proc"))
			snprintf(dc->ns.proc_opts, sizeof(dc->ns.proc_opts), "%s", opts);
	}
	if (dc->ns.proc_opts[0])
		pr_info("a proc of the tree's pid namespace is on /proc (%s): mounted again at "
			"restore\n", dc->ns.proc_opts);
	return 0;
}

/*
 * A pid namespace of its own: only whole, with its init the root (the
 * images hold the pids the tree sees; pstree.c made the map).
 */
static int dump_pid_ns(struct dump_ctx *dc)
{
	struct dump_task *root = dc->tasks[0];

	if (!dc->pids.own_ns)
		return 0;
	if (root->vpid != 1) {
		pr_err("process %d is pid %d of its own pid namespace, not its init: a pid "
		       "namespace is saved only with its init at the root of the tree\n",
		       root->pid, root->vpid);
		return -EOPNOTSUPP;
	}
	dc->ns.pid_ns_id = dump_new_id(dc);
	dc->ns.amber_pid_ns_id = dump_new_id(dc);
	pr_info("pid namespace of %d (its pid 1): pid_ns_id %u\n", root->pid, dc->ns.pid_ns_id);
	/* With its whole mount namespace saved, that proc is one of its mounts. */
	return dc->ns.mnt_ns_id ? 0 : find_tree_proc(dc, root->pid);
}

int dump_namespaces(struct dump_ctx *dc)
{
	pid_t root = dc->tasks[0]->pid;
	bool same = true;
	/* First: the ids the other images hold are as the tree sees them. */
	int ret = dump_ns_user(dc, root);

	if (!ret)
		ret = same_ns(root, "mnt", &same);

	/* Before the pid namespace, which looks for a proc of its own otherwise. */
	if (!ret && !same && !dump_same_mounts(root, dc->pids.own_ns))
		ret = dump_mnt_ns(dc, root);
	if (!ret)
		ret = dump_pid_ns(dc);

	if (!ret) {
		ret = same_ns(root, "time", &same);
		if (ret == -ENOENT && access("/proc/self/ns/time", F_OK))
			ret = 0, same = true; /* a kernel without time namespaces */
	}
	if (!ret && !same)
		ret = dump_ns_time(dc, root);

	if (!ret)
		ret = dump_uts(dc, root);

	if (!ret)
		ret = same_ns(root, "ipc", &same);
	if (!ret && !same)
		ret = dump_ns_ipc(dc, root);
	/* This thread is in the tree's network namespace already (dump.c). */
	if (!ret && dc->host_netns_fd >= 0)
		ret = dump_ns_net(dc, root);
	return ret;
}

void dump_ns_fill_ids(const struct dump_ctx *dc, TaskKobjIdsEntry *ids, bool inventory)
{
	if (dc->ns.pid_ns_id) {
		ids->has_pid_ns_id = true;
		ids->pid_ns_id = inventory ? dc->ns.amber_pid_ns_id : dc->ns.pid_ns_id;
	}
	if (dc->ns.uts_ns_id) {
		ids->has_uts_ns_id = true;
		ids->uts_ns_id = inventory ? dc->ns.amber_uts_ns_id : dc->ns.uts_ns_id;
	}
	if (dc->ns.ipc_ns_id) {
		ids->has_ipc_ns_id = true;
		ids->ipc_ns_id = inventory ? dc->ns.amber_ipc_ns_id : dc->ns.ipc_ns_id;
	}
	if (dc->ns.net_ns_id) {
		ids->has_net_ns_id = true;
		ids->net_ns_id = inventory ? dc->ns.amber_net_ns_id : dc->ns.net_ns_id;
	}
	if (dc->ns.time_ns_id) {
		ids->has_time_ns_id = true;
		ids->time_ns_id = inventory ? dc->ns.amber_time_ns_id : dc->ns.time_ns_id;
	}
	if (dc->ns.user.id) {
		ids->has_user_ns_id = true;
		ids->user_ns_id = inventory ? dc->ns.user.amber_id : dc->ns.user.id;
	}
	if (dc->ns.mnt_ns_id && !inventory) {
		ids->has_mnt_ns_id = true;
		ids->mnt_ns_id = dc->ns.mnt_ns_id;
	}
}
