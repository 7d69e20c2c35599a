// SPDX-License-Identifier: MIT
/* The tree's own namespaces: what a restore needs to make them again (ns.h). */
#define LOG_PREFIX "ns: "
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "base/log.h"
#include "dump/dump.h"
#include "dump/ns.h"
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
	ue.nodename = u.nodename;
	ue.domainname = u.domainname;
	pr_info("UTS namespace of %d: %s (domain %s), utsns-%u.img\n", root, u.nodename,
		u.domainname, dc->ns.uts_ns_id);
	return img_write_one(dc->dirfd, IMG_UTSNS, dc->ns.uts_ns_id, &ue.base);
}

int dump_namespaces(struct dump_ctx *dc)
{
	pid_t root = dc->tasks[0]->pid;
	bool same = true;
	int ret = dump_uts(dc, root);

	if (!ret)
		ret = same_ns(root, "ipc", &same);
	if (!ret && !same)
		ret = dump_ns_ipc(dc, root);
	if (!ret)
		ret = same_ns(root, "net", &same);
	if (!ret && !same)
		ret = dump_ns_net(dc, root);
	return ret;
}

void dump_ns_fill_ids(const struct dump_ctx *dc, TaskKobjIdsEntry *ids)
{
	if (dc->ns.uts_ns_id) {
		ids->has_uts_ns_id = true;
		ids->uts_ns_id = dc->ns.uts_ns_id;
	}
	if (dc->ns.ipc_ns_id) {
		ids->has_ipc_ns_id = true;
		ids->ipc_ns_id = dc->ns.ipc_ns_id;
	}
	if (dc->ns.net_ns_id) {
		ids->has_net_ns_id = true;
		ids->net_ns_id = dc->ns.net_ns_id;
	}
}
