// SPDX-License-Identifier: MIT
/*
 * The tasks' cgroups (dump/cgroup.c), put back on cgroup v2: each
 * restored task goes into its saved set's unified cgroup, made if
 * missing, below --cgroup-root if one is given. Named (v1) hierarchies
 * are left as amber's: a caller such as runc puts amber where the tree
 * belongs before the restore (docs/namespaces.md).
 */
#define LOG_PREFIX "cgroup: "
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "image/image.h"
#include "restore/restore.h"
#include "cgroup.pb-c.h"

/* Absolute, no "." or ".." component: it stays under the hierarchy's root. */
static bool path_ok(const char *p)
{
	if (*p != '/')
		return false;
	while (*p) {
		size_t n;

		while (*p == '/')
			p++;
		n = strcspn(p, "/");
		if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return false;
		p += n;
	}
	return true;
}

static const char *unified_of(const CgSetEntry *set)
{
	for (size_t i = 0; i < set->n_ctls; i++)
		if (!set->ctls[i]->name[0])
			return set->ctls[i]->path;
	return NULL;
}

static const CgSetEntry *set_of(const struct rst_ctx *rc, uint32_t id)
{
	for (size_t i = 0; rc->cg && i < rc->cg->n_sets; i++)
		if (rc->cg->sets[i]->id == id)
			return rc->cg->sets[i];
	return NULL;
}

static uint32_t task_set(const struct rst_task *t)
{
	const TaskCoreEntry *tc = t->cores ? t->cores[0]->tc : NULL;

	return tc && tc->has_cg_set ? tc->cg_set : 0;
}

/*
 * A cgroup namespace's root, the first cgns_prefix bytes of the member's
 * path; 0 (or none) is no namespace of the tree's own (CRIU may write 0).
 */
static bool has_cgns(const CgMemberEntry *m)
{
	return m->has_cgns_prefix && m->cgns_prefix;
}

/* cgns_prefix: a length of @path that ends at one of its components. */
static bool prefix_ok(const CgMemberEntry *m)
{
	size_t l = strlen(m->path);

	return !has_cgns(m) || (m->cgns_prefix <= l && (m->cgns_prefix == 1 ||
							m->path[m->cgns_prefix] == '/' ||
							!m->path[m->cgns_prefix]));
}

static int unified_mount(char *out, size_t len);

/*
 * The root's set names a cgroup namespace (a cgns_prefix): rc->cgns, and
 * where its v2 root is for amber, with --cgroup-root in place of the
 * root's saved cgroup (the namespace's root becomes --cgroup-root,
 * as CRIU rewrites it; a root task below its namespace's root then sees
 * itself at the namespace's root). Without the v2 hierarchy, or with cgroups
 * ignored, the namespace is made where the root is.
 */
static int find_cgns(struct rst_ctx *rc, const CgSetEntry *root_set)
{
	const CgMemberEntry *v2 = NULL;
	char mnt[PATH_MAX], dir[PATH_MAX];
	int ret, n;

	for (size_t i = 0; root_set && i < root_set->n_ctls; i++) {
		rc->cgns |= has_cgns(root_set->ctls[i]);
		if (!root_set->ctls[i]->name[0] && has_cgns(root_set->ctls[i]))
			v2 = root_set->ctls[i];
	}
	if (!rc->cgns || !v2 || rc->opts->cgroups_ignore)
		return 0;
	ret = unified_mount(mnt, sizeof(mnt));
	if (ret || !mnt[0])
		return ret;
	if (rc->opts->cgroup_root) {
		/* The root's cgroup becomes --cgroup-root: so does its namespace's root. */
		n = snprintf(dir, sizeof(dir), "%s%s", mnt, rc->opts->cgroup_root);
	} else {
		n = snprintf(dir, sizeof(dir), "%s%.*s", mnt, (int)v2->cgns_prefix, v2->path);
	}
	if (n >= (int)sizeof(dir))
		return -ENAMETOOLONG;
	rc->cgns_dir = strdup(dir);
	return rc->cgns_dir ? 0 : -ENOMEM;
}

int rst_cgroup_load(struct rst_ctx *rc)
{
	int ret;

	if (faccessat(rc->dirfd, "cgroup.img", F_OK, 0))
		return 0;
	ret = img_read_one(rc->dirfd, IMG_CGROUP, 0, &cgroup_entry__descriptor,
			   (ProtobufCMessage **)&rc->cg);
	if (ret) {
		pr_err("cgroup.img can't be read\n");
		return ret;
	}
	for (size_t i = 0; i < rc->cg->n_sets; i++) {
		const CgSetEntry *s = rc->cg->sets[i];

		for (size_t j = 0; j < s->n_ctls; j++) {
			if (!path_ok(s->ctls[j]->path)) {
				pr_err(
				    "cgroup.img: set %u names the cgroup %s: not a path under its "
				    "hierarchy's root\n",
				    s->id, s->ctls[j]->path);
				return -EINVAL;
			}
			if (!prefix_ok(s->ctls[j])) {
				pr_err("cgroup.img: set %u: cgns_prefix %u is not a part of its "
				       "cgroup %s\n", s->id, s->ctls[j]->cgns_prefix,
				       s->ctls[j]->path);
				return -EINVAL;
			}
		}
	}
	for (int i = 0; i < rc->nr_tasks; i++) {
		uint32_t id = task_set(&rc->tasks[i]);

		if (id && !set_of(rc, id)) {
			pr_err("core-%d.img: cgroup set %u, not in cgroup.img\n", rc->tasks[i].pid,
			       id);
			return -EINVAL;
		}
	}
	if (rc->opts->cgroup_root && !path_ok(rc->opts->cgroup_root)) {
		pr_err("--cgroup-root %s: not a cgroup path\n", rc->opts->cgroup_root);
		return -EINVAL;
	}
	ret = rc->nr_tasks ? find_cgns(rc, set_of(rc, task_set(&rc->tasks[0]))) : 0;
	if (!ret && rc->cgns)
		pr_info("the tree's own cgroup namespace, rooted at %s\n",
			rc->cgns_dir ? rc->cgns_dir : "amber's cgroups");
	/* Read for its namespace only: the tasks stay in amber's cgroups. */
	if (!ret && rc->opts->cgroups_ignore) {
		cgroup_entry__free_unpacked(rc->cg, NULL);
		rc->cg = NULL;
	}
	return ret;
}

int rst_cgroup_enter_ns(struct rst_ctx *rc)
{
	char path[PATH_MAX + 16];
	int fd, ret = 0;

	if (!rc->cgns)
		return 0;
	if (rc->cgns_dir) {
		/* The namespace's root is the cgroup its maker is in. "0": this task. */
		if (mkdir_p(rc->cgns_dir, 0755) && errno != EEXIST)
			return -errno;
		snprintf(path, sizeof(path), "%s/cgroup.procs", rc->cgns_dir);
		fd = open(path, O_WRONLY | O_CLOEXEC);
		if (fd < 0)
			return -errno;
		if (write(fd, "0", 1) != 1)
			ret = -errno;
		close(fd);
		if (ret)
			return ret;
	}
	return unshare(CLONE_NEWCGROUP) ? -errno : 0;
}

/* Where amber sees the unified hierarchy: "" if it has none. */
static int unified_mount(char *out, size_t len)
{
	cleanup_free char *buf = read_proc(0, "mountinfo", NULL);
	char *line, *save = NULL;

	*out = 0;
	if (!buf)
		return -errno;
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char mp[PATH_MAX], fs[32], *sep = strstr(line, " - ");

		if (sep && sscanf(sep, " - %31s", fs) == 1 && !strcmp(fs, "cgroup2") &&
		    sscanf(line, "%*d %*d %*s %*s %4095s", mp) == 1) {
			snprintf(out, len, "%s", mp);
			return 0;
		}
	}
	return 0;
}

static int join(const char *dir, pid_t pid)
{
	char path[PATH_MAX + 32], num[16];
	int fd, n, ret = 0;

	if (mkdir_p(dir, 0755) && errno != EEXIST)
		return -errno;
	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = snprintf(num, sizeof(num), "%d", pid);
	if (write(fd, num, n) != n)
		ret = -errno;
	close(fd);
	return ret;
}

/* Whether task @host is in the v2 cgroup @dir (under the hierarchy at @mnt) already. */
static bool in_cgroup(pid_t host, const char *mnt, const char *dir)
{
	char path[64];
	cleanup_free char *text = NULL;
	char *p;
	size_t ml = strlen(mnt);

	snprintf(path, sizeof(path), "/proc/%d/cgroup", host);
	text = read_file_at(AT_FDCWD, path, NULL);
	if (!text || strncmp(dir, mnt, ml))
		return false;
	for (p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
		size_t l = strcspn(p, "\n");
		const char *want = dir[ml] ? dir + ml : "/";

		if (!strncmp(p, "0::", 3) && l - 3 == strlen(want) && !strncmp(p + 3, want, l - 3))
			return true;
	}
	return false;
}

int rst_cgroup_apply(struct rst_ctx *rc)
{
	const CgSetEntry *root_set = set_of(rc, task_set(&rc->tasks[0]));
	const char *root_path = root_set ? unified_of(root_set) : NULL;
	char mnt[PATH_MAX];
	int ret;

	if (!rc->cg)
		return 0;
	ret = unified_mount(mnt, sizeof(mnt));
	if (ret || !mnt[0]) {
		pr_warn("no cgroup v2 hierarchy here: the tasks stay in amber's cgroups\n");
		return ret;
	}
	for (int i = 0; i < rc->nr_tasks; i++) {
		const struct rst_task *t = &rc->tasks[i];
		const CgSetEntry *set = set_of(rc, task_set(t));
		const char *p = set ? unified_of(set) : NULL;
		const char *rest = p;
		char dir[PATH_MAX];
		int n;
		pid_t host = rst_host_pid(rc, t->pid);

		if (!p || t->zombie || host <= 0)
			continue;
		/* --cgroup-root takes the place of the root's cgroup; below it stays below. */
		if (rc->opts->cgroup_root) {
			size_t rl = root_path ? strlen(root_path) : 0;

			if (root_path && !strncmp(p, root_path, rl) && (p[rl] == '/' || !p[rl]))
				rest = p + rl;
			n = snprintf(dir, sizeof(dir), "%s%s%s", mnt, rc->opts->cgroup_root, rest);
		} else {
			n = snprintf(dir, sizeof(dir), "%s%s", mnt, p);
		}
		if (n < (int)sizeof(dir) && in_cgroup(host, mnt, dir))
			continue; /* forked there: no write, which an unprivileged caller can't do */
		ret = n >= (int)sizeof(dir) ? -ENAMETOOLONG : join(dir, host);
		if (ret && !rc->opts->cgroups_strict && (ret == -EACCES || ret == -EPERM)) {
			pr_warn("task %d stays in amber's cgroup, not %s: %s\n", t->pid, dir,
				strerror(-ret));
			continue;
		}
		if (ret) {
			pr_err("can't put task %d (%d here) in the cgroup %s: %s\n", t->pid, host,
			       dir, strerror(-ret));
			if (rc->opts->cgroups_strict)
				return ret;
			continue;
		}
		pr_info("task %d in the cgroup %s\n", t->pid, dir);
	}
	return 0;
}
