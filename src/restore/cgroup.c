// SPDX-License-Identifier: MIT
/*
 * The tasks' cgroups (dump/cgroup.c), put back on cgroup v2: each
 * restored task goes into its saved set's unified cgroup, made if
 * missing, below --cgroup-root if one is given. Before any task exists
 * the saved v2 cgroups are made and given their properties as
 * --manage-cgroups says (rst_cgroup_prepare). Named (v1) hierarchies
 * are left as amber's: a caller such as runc puts amber where the tree
 * belongs before the restore (docs/namespaces.md).
 */
#define LOG_PREFIX "cgroup: "
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "base/proc.h"
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

/* The main thread's set: CRIU 4 writes it per thread, and reads that first. */
static uint32_t task_set(const struct rst_task *t)
{
	const TaskCoreEntry *tc = t->cores ? t->cores[0]->tc : NULL;
	const ThreadCoreEntry *th = t->cores ? t->cores[0]->thread_core : NULL;

	if (th && th->has_cg_set)
		return th->cg_set;
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
	ret = proc_unified_mount(mnt, sizeof(mnt));
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

#define CG_MAX_DEPTH 64
#define CG_MAX_VALUE 4096

/* A cgroup's name in its parent's entry: relative, no "." or "..", no empty part. */
static bool dir_name_ok(const char *n, bool head)
{
	if (!*n)
		return head; /* a head "": the hierarchy's root */
	if (*n == '/')
		return false;
	while (*n) {
		size_t l = strcspn(n, "/");

		if (!l || (l == 1 && n[0] == '.') || (l == 2 && n[0] == '.' && n[1] == '.'))
			return false;
		if (!head && n[l])
			return false; /* a child is one level below its parent */
		n += l + !!n[l];
		if (n[-1] == '/' && !*n)
			return false;
	}
	return true;
}

/* A cgroup file's name ("cpu.max", v1's "tasks"), in the kernel's letters: nothing to walk. */
static bool prop_name_ok(const char *n)
{
	size_t l = strlen(n);

	if (!l || l > 64 || n[0] == '.')
		return false;
	for (; *n; n++)
		if (!((*n >= 'a' && *n <= 'z') || (*n >= '0' && *n <= '9') || *n == '.' ||
		      *n == '_' || *n == '-'))
			return false;
	return true;
}

static int check_dirs(CgroupDirEntry **dirs, size_t n, bool head, int depth)
{
	if (depth > CG_MAX_DEPTH) {
		pr_err("cgroup.img: cgroups more than %d deep\n", CG_MAX_DEPTH);
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		const CgroupDirEntry *d = dirs[i];

		if (!dir_name_ok(d->dir_name, head)) {
			pr_err("cgroup.img: the cgroup name \"%s\" is not one below its parent\n",
			       d->dir_name);
			return -EINVAL;
		}
		for (size_t j = 0; j < d->n_properties; j++) {
			const CgroupPropEntry *p = d->properties[j];

			if (!prop_name_ok(p->name) || strlen(p->value) >= CG_MAX_VALUE) {
				pr_err("cgroup.img: the cgroup %s has a property \"%s\" (%zu bytes): "
				       "not a cgroup file's\n", d->dir_name, p->name, strlen(p->value));
				return -EINVAL;
			}
		}
		if (check_dirs(d->children, d->n_children, false, depth + 1))
			return -EINVAL;
	}
	return 0;
}

/* CRIU's cg_controller_entry of the unified hierarchy: cnames [""]. */
static const CgControllerEntry *v2_controller(const CgroupEntry *cg)
{
	for (size_t i = 0; cg && i < cg->n_controllers; i++)
		if (cg->controllers[i]->n_cnames == 1 && !cg->controllers[i]->cnames[0][0])
			return cg->controllers[i];
	return NULL;
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
	for (size_t i = 0; i < rc->cg->n_controllers; i++)
		if (check_dirs(rc->cg->controllers[i]->dirs, rc->cg->controllers[i]->n_dirs, true,
			       0))
			return -EINVAL;
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

/*
 * mkdir -p of the cgroup @dir, each directory it makes recorded in
 * rc->cg_made (parents first) so that a failed restore removes them all.
 */
static int make_cgroup(struct rst_ctx *rc, const char *dir)
{
	char path[PATH_MAX];
	size_t len = strlen(dir);

	if (len >= sizeof(path))
		return -ENAMETOOLONG;
	memcpy(path, dir, len + 1);
	for (size_t end = 1; end <= len; end++) {
		char **m;

		if (path[end] != '/' && path[end])
			continue;
		if (path[end - 1] == '/')
			continue; /* "//": nothing between */
		path[end] = 0;
		if (mkdir(path, 0755)) {
			if (errno != EEXIST)
				return -errno;
		} else {
			m = realloc(rc->cg_made, (rc->nr_cg_made + 1) * sizeof(*m));
			if (m)
				rc->cg_made = m;
			if (!m || !(m[rc->nr_cg_made] = strdup(path))) {
				rmdir(path);
				return -ENOMEM;
			}
			rc->nr_cg_made++;
			pr_info("made the cgroup %s\n", path);
		}
		path[end] = dir[end];
	}
	return 0;
}

void rst_cgroup_undo(struct rst_ctx *rc)
{
	/* deepest first; a killed task may take a moment to leave its cgroup */
	for (size_t i = rc->nr_cg_made; i-- > 0;) {
		int ret, tries = 0;

		while ((ret = rmdir(rc->cg_made[i]) ? -errno : 0) == -EBUSY && ++tries < 200)
			usleep(10000);
		if (ret && ret != -ENOENT)
			pr_warn("can't remove the cgroup %s it made: %s\n", rc->cg_made[i],
				strerror(-ret));
		else
			pr_info("removed the cgroup %s it made\n", rc->cg_made[i]);
	}
	rst_cgroup_forget(rc);
}

void rst_cgroup_forget(struct rst_ctx *rc)
{
	for (size_t i = 0; i < rc->nr_cg_made; i++)
		free(rc->cg_made[i]);
	free(rc->cg_made);
	rc->cg_made = NULL;
	rc->nr_cg_made = 0;
}

static int join(struct rst_ctx *rc, const char *dir, pid_t pid, bool make)
{
	char path[PATH_MAX + 32], num[16];
	int fd, n, ret = 0;

	if (make && (ret = make_cgroup(rc, dir)))
		return ret;
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

/*
 * Where the saved v2 cgroup @p is restored, under amber's mount @mnt:
 * --cgroup-root takes the place of the root's saved cgroup, and a
 * cgroup below that stays as far below.
 */
static int restored_dir(const struct rst_ctx *rc, const char *mnt, const char *p, char *dir,
			size_t len)
{
	const CgSetEntry *root_set = rc->nr_tasks ? set_of(rc, task_set(&rc->tasks[0])) : NULL;
	const char *root_path = root_set ? unified_of(root_set) : NULL;
	const char *rest = p;
	int n;

	if (rc->opts->cgroup_root) {
		size_t rl = root_path ? strlen(root_path) : 0;

		if (root_path && !strncmp(p, root_path, rl) && (p[rl] == '/' || !p[rl]))
			rest = p + rl;
		n = snprintf(dir, len, "%s%s%s", mnt, rc->opts->cgroup_root, rest);
	} else {
		n = snprintf(dir, len, "%s%s", mnt, p);
	}
	return n < (int)len ? 0 : -ENAMETOOLONG;
}

/* Modes that make missing cgroups: CRIU's props and none take them as they are. */
static bool mode_makes(enum amber_manage_cgroups m)
{
	return m != AMBER_CGROUPS_PROPS && m != AMBER_CGROUPS_NONE;
}

int rst_cgroup_apply(struct rst_ctx *rc)
{
	char mnt[PATH_MAX];
	int ret;

	if (!rc->cg)
		return 0;
	ret = proc_unified_mount(mnt, sizeof(mnt));
	if (ret || !mnt[0]) {
		pr_warn("no cgroup v2 hierarchy here: the tasks stay in amber's cgroups\n");
		return ret;
	}
	for (int i = 0; i < rc->nr_tasks; i++) {
		const struct rst_task *t = &rc->tasks[i];
		const CgSetEntry *set = set_of(rc, task_set(t));
		const char *p = set ? unified_of(set) : NULL;
		char dir[PATH_MAX];
		pid_t host = rst_host_pid(rc, t->pid);

		if (!p || t->zombie || host <= 0)
			continue;
		ret = restored_dir(rc, mnt, p, dir, sizeof(dir));
		if (!ret && in_cgroup(host, mnt, dir))
			continue; /* forked there: no write, which an unprivileged caller can't do */
		if (!ret)
			ret = join(rc, dir, host, mode_makes(rc->opts->cgroups_mode));
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

/* The saved cgroups' properties, set back before any task exists. */
struct cg_prep {
	struct rst_ctx *rc;
	enum amber_manage_cgroups mode;
	char mnt[PATH_MAX];
};

static const char *mode_name(enum amber_manage_cgroups m)
{
	static const char *const names[] = { "soft", "ignore", "soft", "full", "strict",
					     "props", "none" };

	return (size_t)m < sizeof(names) / sizeof(names[0]) ? names[m] : "?";
}

/* @path's saved cgroup @p/@name: its full path under the mount. */
static int child_path(char *out, size_t len, const char *parent, const char *name)
{
	int n = snprintf(out, len, "%s%s%s", parent, *name ? "/" : "", name);

	return n < (int)len ? 0 : -ENAMETOOLONG;
}

/*
 * strict: none of the saved cgroups may exist yet; props and none: all
 * of them must. Checked for all of them before anything is made.
 */
static int check_exist(struct cg_prep *cp, CgroupDirEntry **dirs, size_t n, const char *parent)
{
	for (size_t i = 0; i < n; i++) {
		char dir[PATH_MAX];
		bool exists;
		int ret = child_path(dir, sizeof(dir), parent, dirs[i]->dir_name);

		if (ret)
			return ret;
		exists = !access(dir, F_OK);
		if (exists && cp->mode == AMBER_CGROUPS_STRICT && strcmp(dir, cp->mnt)) {
			pr_err("the cgroup %s exists: --manage-cgroups=strict restores into cgroups "
			       "it makes\n", dir);
			return -EEXIST;
		}
		if (!exists && !mode_makes(cp->mode)) {
			pr_err("the cgroup %s is missing: --manage-cgroups=%s makes none\n", dir,
			       mode_name(cp->mode));
			return -ENOENT;
		}
		ret = check_exist(cp, dirs[i]->children, dirs[i]->n_children, dir);
		if (ret)
			return ret;
	}
	return 0;
}

static int write_file(const char *dir, const char *name, const char *val)
{
	char path[PATH_MAX + 64];
	int fd, ret = 0;
	size_t l = strlen(val);

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, val, l) != (ssize_t)l)
		ret = -errno;
	close(fd);
	return ret;
}

static bool has_word(const char *list, const char *w, size_t wl)
{
	for (const char *p = list; p && *p;) {
		size_t l;

		p += strspn(p, " \n");
		l = strcspn(p, " \n");
		if (l == wl && !strncmp(p, w, wl))
			return true;
		p += l;
	}
	return false;
}

/*
 * The controller @ctl is enabled in @dir (in its cgroup.controllers):
 * else enabled in its parent's subtree_control, and up to where it is.
 */
static int enable_ctl(struct cg_prep *cp, const char *dir, const char *ctl, size_t cl)
{
	char path[PATH_MAX + 32], parent[PATH_MAX], add[40];
	cleanup_free char *ctls = NULL;
	char *slash;
	int ret;

	snprintf(path, sizeof(path), "%s/cgroup.controllers", dir);
	ctls = read_file_at(AT_FDCWD, path, NULL);
	if (ctls && has_word(ctls, ctl, cl))
		return 0;
	snprintf(parent, sizeof(parent), "%s", dir);
	slash = strrchr(parent, '/');
	if (!strcmp(dir, cp->mnt) || !slash || slash == parent ||
	    (size_t)(slash - parent) < strlen(cp->mnt)) {
		pr_err("the controller %.*s is not in this cgroup v2 hierarchy\n", (int)cl, ctl);
		return -EOPNOTSUPP;
	}
	*slash = 0;
	ret = enable_ctl(cp, parent, ctl, cl);
	if (ret)
		return ret;
	snprintf(add, sizeof(add), "+%.*s", (int)cl, ctl);
	ret = write_file(parent, "cgroup.subtree_control", add);
	if (ret)
		pr_err("can't enable the controller %.*s in %s (for %s): %s\n", (int)cl, ctl,
		       parent, dir, strerror(-ret));
	else
		pr_info("enabled %.*s in %s for %s\n", (int)cl, ctl, parent, dir);
	return ret;
}

/* cgroup.subtree_control as saved: each controller added or removed on its own. */
static int set_subtree_control(const char *dir, const char *want)
{
	char path[PATH_MAX + 32], op[40];
	cleanup_free char *cur = NULL;
	int ret = 0;

	snprintf(path, sizeof(path), "%s/cgroup.subtree_control", dir);
	cur = read_file_at(AT_FDCWD, path, NULL);
	if (!cur)
		return -errno;
	for (int pass = 0; pass < 2 && !ret; pass++) {
		const char *from = pass ? cur : want, *other = pass ? want : cur;

		for (const char *p = from; *p && !ret;) {
			size_t l;

			p += strspn(p, " \n");
			l = strcspn(p, " \n");
			if (l && l < 32 && !has_word(other, p, l)) {
				snprintf(op, sizeof(op), "%c%.*s", pass ? '-' : '+', (int)l, p);
				ret = write_file(dir, "cgroup.subtree_control", op);
				if (ret)
					pr_err("can't set cgroup.subtree_control of the cgroup %s to "
					       "\"%s\" (writing %s): %s\n", dir, want, op,
					       strerror(-ret));
			}
			p += l;
		}
	}
	return ret;
}

/* Files saved for their permissions or state amber does not set back. */
static bool prop_skipped(const CgroupPropEntry *p)
{
	static const char *const skip[] = { "cgroup.procs", "cgroup.threads", "tasks",
					    "cgroup.freeze", "cgroup.events", "freezer.state" };

	for (size_t i = 0; i < sizeof(skip) / sizeof(skip[0]); i++)
		if (!strcmp(p->name, skip[i]))
			return true;
	/* a threaded cgroup is made so; "domain" is what a new one is */
	return !strcmp(p->name, "cgroup.type") && strcmp(p->value, "threaded");
}

static int set_props(struct cg_prep *cp, const char *dir, const CgroupDirEntry *d)
{
	for (size_t i = 0; i < d->n_properties; i++) {
		const CgroupPropEntry *p = d->properties[i];
		size_t cl = strcspn(p->name, ".");
		int ret;

		if (prop_skipped(p))
			continue;
		if (!strcmp(p->name, "cgroup.subtree_control")) {
			ret = set_subtree_control(dir, p->value);
			if (ret)
				return ret;
			continue;
		}
		/* cpuset's "" is the parent's, as a new cgroup has it */
		if (!p->value[0])
			continue;
		if (strncmp(p->name, "cgroup.", 7)) {
			ret = enable_ctl(cp, dir, p->name, cl);
			if (ret)
				return ret;
		}
		ret = write_file(dir, p->name, p->value);
		if (ret) {
			pr_err("can't set %s of the cgroup %s to \"%s\": %s\n", p->name, dir,
			       p->value, strerror(-ret));
			return ret;
		}
		pr_info("%s/%s = %s\n", dir, p->name, p->value);
	}
	return 0;
}

/* A cgroup this restore made: its saved owner and mode, and its files'. */
static int set_perms(const char *dir, const CgroupDirEntry *d)
{
	char path[PATH_MAX + 64];

	if (d->dir_perms && (chown(dir, d->dir_perms->uid, d->dir_perms->gid) ||
			     chmod(dir, d->dir_perms->mode & 07777)))
		goto err;
	for (size_t i = 0; i < d->n_properties; i++) {
		const CgroupPerms *pp = d->properties[i]->perms;

		snprintf(path, sizeof(path), "%s/%s", dir, d->properties[i]->name);
		if (pp && !access(path, F_OK) &&
		    (chown(path, pp->uid, pp->gid) || chmod(path, pp->mode & 07777))) {
			snprintf(path, sizeof(path), "%s", dir);
			goto err;
		}
	}
	return 0;
err:
	pr_perror("can't give %s its saved owner and mode", path[0] ? path : dir);
	return -errno;
}

static int prepare_dirs(struct cg_prep *cp, CgroupDirEntry **dirs, size_t n, const char *parent)
{
	for (size_t i = 0; i < n; i++) {
		const CgroupDirEntry *d = dirs[i];
		char dir[PATH_MAX];
		bool made = false;
		int ret = child_path(dir, sizeof(dir), parent, d->dir_name);

		if (ret)
			return ret;
		if (access(dir, F_OK) && mode_makes(cp->mode)) {
			/* a head's missing ancestors are made too */
			ret = make_cgroup(cp->rc, dir);
			if (ret) {
				pr_err("can't make the cgroup %s: %s\n", dir, strerror(-ret));
				return ret;
			}
			made = true;
		}
		if (made)
			ret = set_perms(dir, d);
		/* soft: an existing cgroup is someone else's, left as it is */
		if (!ret && strcmp(dir, cp->mnt) && cp->mode != AMBER_CGROUPS_NONE &&
		    (made || cp->mode != AMBER_CGROUPS_SOFT))
			ret = set_props(cp, dir, d);
		if (!ret)
			ret = prepare_dirs(cp, d->children, d->n_children, dir);
		if (ret)
			return ret;
	}
	return 0;
}

static int prepare_v2(struct rst_ctx *rc)
{
	const CgControllerEntry *v2 = v2_controller(rc->cg);
	struct cg_prep cp = { .rc = rc, .mode = rc->opts->cgroups_mode };
	int ret;

	if (!v2 || !v2->n_dirs || cp.mode == AMBER_CGROUPS_IGNORE)
		return 0;
	if (cp.mode == AMBER_CGROUPS_DEFAULT)
		cp.mode = AMBER_CGROUPS_SOFT;
	ret = proc_unified_mount(cp.mnt, sizeof(cp.mnt));
	if (ret || !cp.mnt[0])
		return ret; /* rst_cgroup_apply says so */
	/* every check before anything is made, then the cgroups head by head */
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < v2->n_dirs && !ret; i++) {
			char head[PATH_MAX + 1], dir[PATH_MAX];
			CgroupDirEntry top = *v2->dirs[i], *topp = &top;

			/* a head's name is its path: it goes where --cgroup-root puts it */
			snprintf(head, sizeof(head), "/%s", top.dir_name);
			ret = restored_dir(rc, cp.mnt, top.dir_name[0] ? head : "", dir,
					   sizeof(dir));
			top.dir_name = "";
			if (!ret)
				ret = pass ? prepare_dirs(&cp, &topp, 1, dir)
					   : check_exist(&cp, &topp, 1, dir);
		}
		if (ret)
			break;
	}
	if (ret) {
		/* nothing is in them yet: the cgroups made go, deepest first */
		rst_cgroup_undo(rc);
		pr_err("the saved cgroups were not restored (--manage-cgroups=%s)\n",
		       mode_name(cp.mode));
	}
	return ret;
}

int rst_cgroup_prepare(struct rst_ctx *rc)
{
	int ret = prepare_v2(rc);

	/* made here, where a failed restore can remove it, not in the root task */
	if (!ret && rc->cgns_dir) {
		ret = make_cgroup(rc, rc->cgns_dir);
		if (ret) {
			pr_err("can't make the cgroup namespace's root %s: %s\n", rc->cgns_dir,
			       strerror(-ret));
			rst_cgroup_undo(rc);
		}
	}
	return ret;
}
