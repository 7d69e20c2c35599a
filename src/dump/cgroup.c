// SPDX-License-Identifier: MIT
/*
 * The tasks' cgroups, saved as CRIU's cgroup.img: one set per distinct
 * /proc/PID/cgroup, named by each task's tc.cg_set (and the inventory's
 * root_cg_set), and on cgroup v2 the cgroups they are in with their
 * subtrees and the properties that matter to a service (cpu, memory,
 * pids, cpuset, io limits, cgroup.max.* and cgroup.subtree_control), as CRIU's
 * cg_controller_entry of the unified hierarchy (cnames [""]).
 */
#define LOG_PREFIX "cgroup: "
#include <ctype.h>
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
#include "dump/dump.h"
#include "image/image.h"
#include "cgroup.pb-c.h"

/* "hier:controllers:path" lines into @set's members (pointing into @buf). */
static int parse_set(struct arena *a, char *buf, CgSetEntry *set)
{
	char *line, *save = NULL;
	size_t n = 0;

	for (char *c = buf; *c; c++)
		n += *c == '\n';
	set->ctls = arena_alloc(a, (n + 1) * sizeof(*set->ctls));
	if (!set->ctls)
		return -ENOMEM;
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *ctl = strchr(line, ':'), *path = ctl ? strchr(ctl + 1, ':') : NULL;
		CgMemberEntry *m = arena_alloc(a, sizeof(*m));

		if (!path || !m)
			return path ? -ENOMEM : -EINVAL;
		*path++ = 0;
		cg_member_entry__init(m);
		m->name = ctl + 1;
		m->path = path;
		set->ctls[set->n_ctls++] = m;
	}
	return 0;
}

/* The root's cgroup namespace is amber's (or the kernel has none). */
static bool same_cgns(pid_t root)
{
	char path[64];
	struct stat theirs, mine;

	snprintf(path, sizeof(path), "/proc/%d/ns/cgroup", root);
	if (stat("/proc/self/ns/cgroup", &mine) || stat(path, &theirs))
		return true;
	return theirs.st_ino == mine.st_ino && theirs.st_dev == mine.st_dev;
}

/*
 * /proc/@pid/cgroup as the tree sees it: relative to its cgroup namespace's
 * roots. This thread enters the namespace to read it and comes back
 * (setns of a cgroup namespace is per thread).
 */
static char *read_cgroup_inside(pid_t pid)
{
	char path[64];
	int mine = open("/proc/thread-self/ns/cgroup", O_RDONLY | O_CLOEXEC), theirs;
	char *buf = NULL;

	snprintf(path, sizeof(path), "/proc/%d/ns/cgroup", pid);
	theirs = open(path, O_RDONLY | O_CLOEXEC);
	if (mine >= 0 && theirs >= 0 && !setns(theirs, CLONE_NEWCGROUP)) {
		buf = read_proc(pid, "cgroup", NULL);
		if (setns(mine, CLONE_NEWCGROUP)) {
			/* Every later cgroup path amber reads would be the tree's. */
			pr_perror("can't return to amber's cgroup namespace");
			free(buf);
			buf = NULL;
		}
	} else {
		pr_perror("can't enter the cgroup namespace of %d", pid);
	}
	if (mine >= 0)
		close(mine);
	if (theirs >= 0)
		close(theirs);
	return buf;
}

/* @path is @root or below it. */
static bool path_below(const char *path, const char *root, size_t rl)
{
	if (rl == 1) /* "/" */
		return *path == '/';
	return !strncmp(path, root, rl) && (path[rl] == '/' || !path[rl]);
}

/*
 * A cgroup namespace of the tree's own (unsupported.c checked that every
 * task shares the root's): for each hierarchy, its root is the root
 * task's cgroup less what the task sees of it from inside; every member
 * of that hierarchy gets its length as cgns_prefix (CRIU's), and must be
 * below it (a task moved out of its namespace's root is refused).
 */
static int cgns_prefixes(struct dump_ctx *dc, CgroupEntry *ce, const CgSetEntry *root_set)
{
	pid_t root = dc->tasks[0]->pid;
	cleanup_free char *inside = read_cgroup_inside(root);
	char *line, *save = NULL;

	if (!inside)
		return -EIO;
	for (line = strtok_r(inside, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *ctl = strchr(line, ':'), *in = ctl ? strchr(ctl + 1, ':') : NULL;
		const char *host = NULL;
		size_t hl, il, pl;

		if (!in)
			return -EINVAL;
		*in++ = 0;
		ctl++;
		for (size_t j = 0; j < root_set->n_ctls; j++)
			if (!strcmp(root_set->ctls[j]->name, ctl))
				host = root_set->ctls[j]->path;
		if (!host)
			continue;
		hl = strlen(host), il = strlen(in);
		if (!strcmp(in, "/"))
			pl = hl;
		else if (il <= hl && !strcmp(host + hl - il, in))
			pl = hl - il;
		else
			pl = 0;
		if (!pl && !strcmp(host, "/"))
			pl = 1;
		if (!pl || !path_below(host, host, pl) || (pl < hl && host[pl] != '/')) {
			pr_err("process %d: its cgroup %s of \"%s\" is %s in its cgroup "
			       "namespace: no namespace root to save\n", root, host, ctl, in);
			return -EOPNOTSUPP;
		}
		for (size_t s = 0; s < ce->n_sets; s++) {
			CgSetEntry *set = ce->sets[s];

			for (size_t j = 0; j < set->n_ctls; j++) {
				CgMemberEntry *m = set->ctls[j];

				if (strcmp(m->name, ctl))
					continue;
				if (!path_below(m->path, host, pl)) {
					pr_err("a task of the tree is in the cgroup %s of \"%s\", out of "
					       "its cgroup namespace's root %.*s\n", m->path, ctl,
					       (int)pl, host);
					return -EOPNOTSUPP;
				}
				m->has_cgns_prefix = true;
				m->cgns_prefix = pl;
			}
		}
		pr_info("cgroup namespace of %d: the root of \"%s\" is %.*s\n", root, ctl, (int)pl,
			host);
	}
	return 0;
}

/*
 * The saved properties of each controller enabled in a cgroup (its
 * cgroup.controllers), in the order the restore sets them: cpuset's
 * first (CRIU sets them before anything joins), memory's floors before
 * its limits.
 */
static const struct {
	const char *ctl;
	const char *props[6];
} v2_props[] = {
	{ "cpuset", { "cpuset.cpus", "cpuset.mems" } },
	{ "cpu", { "cpu.max", "cpu.weight" } },
	{ "memory", { "memory.min", "memory.low", "memory.high", "memory.max", "memory.swap.max" } },
	{ "io", { "io.weight" } },
	{ "pids", { "pids.max" } },
};

/* Every v2 cgroup's own limits, and which controllers its children get. */
static const char *const v2_core_props[] = { "cgroup.max.descendants", "cgroup.max.depth",
					     "cgroup.subtree_control" };

#define CG_MAX_PROPS 16	  /* the above */
#define CG_MAX_DEPTH 64	  /* deeper than any real hierarchy: a loop of mounts, refused */
#define CG_MAX_VALUE 4096 /* a cgroup file's value as the kernel prints it */

static CgroupPerms *perms_of(struct arena *a, const struct stat *st)
{
	CgroupPerms *p = arena_new(a, CgroupPerms);

	if (p) {
		cgroup_perms__init(p);
		p->mode = st->st_mode;
		p->uid = st->st_uid;
		p->gid = st->st_gid;
	}
	return p;
}

/* @dir/@name into @d's properties; a file the kernel does not have is left out. */
static int save_prop(struct arena *a, const char *dir, const char *name, CgroupDirEntry *d)
{
	char path[PATH_MAX], buf[CG_MAX_VALUE];
	CgroupPropEntry *pe;
	struct stat st;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT)
		return 0;
	if (fd < 0 || fstat(fd, &st) || (n = read(fd, buf, sizeof(buf) - 1)) < 0) {
		int ret = -errno;

		pr_perror("can't read %s", path);
		if (fd >= 0)
			close(fd);
		return ret;
	}
	close(fd);
	while (n > 0 && buf[n - 1] == '\n')
		n--;
	buf[n] = 0;
	pe = arena_new(a, CgroupPropEntry);
	if (!pe)
		return -ENOMEM;
	cgroup_prop_entry__init(pe);
	pe->name = (char *)name;
	pe->value = arena_strdup(a, buf);
	pe->perms = perms_of(a, &st);
	if (!pe->value || !pe->perms)
		return -ENOMEM;
	d->properties[d->n_properties++] = pe;
	return 0;
}

/* @word is one of the space-separated words of @list. */
static bool has_word(const char *list, const char *word)
{
	size_t wl = strlen(word);

	for (const char *p = list; p && (p = strstr(p, word)); p += wl)
		if ((p == list || isspace((unsigned char)p[-1])) &&
		    (!p[wl] || isspace((unsigned char)p[wl])))
			return true;
	return false;
}

/* The cgroup @full (named @name in its parent's entry) and every cgroup below it. */
static int save_dir(struct arena *a, const char *full, const char *name, int depth,
		    CgroupDirEntry **out)
{
	char path[PATH_MAX];
	cleanup_free char *ctls = NULL;
	CgroupDirEntry *d = arena_new(a, CgroupDirEntry);
	struct dirent *de;
	struct stat st;
	size_t n = 0;
	int ret = 0;
	DIR *dir;

	if (!d)
		return -ENOMEM;
	if (depth > CG_MAX_DEPTH) {
		pr_err("the cgroup %s is more than %d deep\n", full, CG_MAX_DEPTH);
		return -ELOOP;
	}
	cgroup_dir_entry__init(d);
	if (stat(full, &st)) {
		pr_perror("can't stat the cgroup %s", full);
		return -errno;
	}
	d->dir_name = arena_strdup(a, name);
	d->dir_perms = perms_of(a, &st);
	d->properties = arena_array(a, CgroupPropEntry *, CG_MAX_PROPS);
	if (!d->dir_name || !d->dir_perms || !d->properties)
		return -ENOMEM;
	snprintf(path, sizeof(path), "%s/cgroup.controllers", full);
	ctls = read_file_at(AT_FDCWD, path, NULL);
	if (!ctls) {
		pr_perror("can't read %s", path);
		return -errno;
	}
	for (size_t i = 0; i < sizeof(v2_props) / sizeof(v2_props[0]) && !ret; i++)
		for (size_t j = 0; has_word(ctls, v2_props[i].ctl) && v2_props[i].props[j] && !ret;
		     j++)
			ret = save_prop(a, full, v2_props[i].props[j], d);
	for (size_t i = 0; i < sizeof(v2_core_props) / sizeof(v2_core_props[0]) && !ret; i++)
		ret = save_prop(a, full, v2_core_props[i], d);
	if (ret)
		return ret;

	dir = opendir(full);
	if (!dir)
		return -errno;
	while ((de = readdir(dir)))
		n += de->d_type == DT_DIR && de->d_name[0] != '.';
	d->children = arena_array(a, CgroupDirEntry *, n ? n : 1);
	rewinddir(dir);
	while (!ret && d->children && (de = readdir(dir))) {
		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		if (d->n_children == n) /* made while the tree is frozen: not the tree's */
			break;
		snprintf(path, sizeof(path), "%s/%s", full, de->d_name);
		ret = save_dir(a, path, de->d_name, depth + 1, &d->children[d->n_children]);
		d->n_children += !ret;
	}
	closedir(dir);
	if (!d->children)
		return -ENOMEM;
	*out = d;
	return ret;
}

/*
 * The v2 cgroups the sets name, each with its subtree (as CRIU walks
 * them): one cg_controller_entry whose dirs are the topmost of them,
 * named by their path under the hierarchy's root, their children by
 * their names. The hierarchy's root has no properties to save.
 */
static int save_v2_dirs(struct dump_ctx *dc, CgroupEntry *ce)
{
	CgControllerEntry *cc;
	char mnt[PATH_MAX], full[PATH_MAX * 2];
	const char **heads;
	size_t nh = 0;
	int ret = proc_unified_mount(mnt, sizeof(mnt));

	if (ret || !mnt[0]) {
		if (!ret)
			pr_info("no cgroup v2 hierarchy here: no cgroup properties saved\n");
		return ret;
	}
	heads = arena_array(&dc->arena, const char *, ce->n_sets + 1);
	if (!heads)
		return -ENOMEM;
	for (size_t s = 0; s < ce->n_sets; s++) {
		for (size_t j = 0; j < ce->sets[s]->n_ctls; j++) {
			const char *p = ce->sets[s]->ctls[j]->path;
			size_t k;

			if (ce->sets[s]->ctls[j]->name[0] || !strcmp(p, "/"))
				continue;
			/* One below another is walked with it; one above takes its place. */
			for (k = 0; k < nh; k++) {
				if (path_below(p, heads[k], strlen(heads[k])))
					break;
				if (path_below(heads[k], p, strlen(p))) {
					heads[k] = p;
					break;
				}
			}
			if (k == nh)
				heads[nh++] = p;
		}
	}
	/* An ancestor put in place of one head may be above others too. */
	for (size_t i = 0; i < nh; i++)
		for (size_t k = 0; k < nh; k++)
			if (k != i && path_below(heads[k], heads[i], strlen(heads[i]))) {
				heads[k] = heads[--nh];
				i = (size_t)-1;
				break;
			}
	cc = arena_new(&dc->arena, CgControllerEntry);
	if (!cc)
		return -ENOMEM;
	cg_controller_entry__init(cc);
	cc->cnames = arena_array(&dc->arena, char *, 1);
	cc->dirs = arena_array(&dc->arena, CgroupDirEntry *, nh ? nh : 1);
	if (!cc->cnames || !cc->dirs)
		return -ENOMEM;
	cc->cnames[0] = "";
	cc->n_cnames = 1;
	cc->has_is_threaded = true;
	for (size_t i = 0; i < nh && !ret; i++) {
		snprintf(full, sizeof(full), "%s%s", mnt, heads[i]);
		ret = save_dir(&dc->arena, full, heads[i] + 1, 0, &cc->dirs[cc->n_dirs]);
		cc->n_dirs += !ret;
	}
	if (ret) {
		pr_err("can't save the properties of the cgroups under %s\n", mnt);
		return ret;
	}
	ce->controllers[ce->n_controllers++] = cc;
	pr_info("%zu cgroup v2 subtree(s) saved with their properties\n", cc->n_dirs);
	return 0;
}

/*
 * A cg_controller_entry for each hierarchy the sets name, as CRIU's
 * restore wants one for every member it moves a task by: v1 ones
 * ("cpu,cpuacct", "name=systemd") with their controllers and no cgroups
 * (amber leaves v1 as it is), then the unified one with its cgroups.
 */
static int save_controllers(struct dump_ctx *dc, CgroupEntry *ce)
{
	size_t most = 1;
	bool v2 = false;

	for (size_t s = 0; s < ce->n_sets; s++)
		most += ce->sets[s]->n_ctls;
	ce->controllers = arena_array(&dc->arena, CgControllerEntry *, most);
	if (!ce->controllers)
		return -ENOMEM;
	for (size_t s = 0; s < ce->n_sets; s++) {
		for (size_t j = 0; j < ce->sets[s]->n_ctls; j++) {
			const char *name = ce->sets[s]->ctls[j]->name;
			CgControllerEntry *cc;
			char *names, *tok, *save = NULL;
			size_t k, n = 1;

			v2 |= !name[0];
			if (!name[0])
				continue;
			for (k = 0; k < ce->n_controllers; k++)
				if (!strcmp(ce->controllers[k]->cnames[ce->controllers[k]->n_cnames],
					    name))
					break;
			if (k < ce->n_controllers)
				continue;
			for (const char *c = name; *c; c++)
				n += *c == ',';
			cc = arena_new(&dc->arena, CgControllerEntry);
			names = arena_strdup(&dc->arena, name);
			if (!cc || !names)
				return -ENOMEM;
			cg_controller_entry__init(cc);
			/* one more slot: the whole name, past n_cnames, to find it by */
			cc->cnames = arena_array(&dc->arena, char *, n + 1);
			if (!cc->cnames)
				return -ENOMEM;
			for (tok = strtok_r(names, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
				cc->cnames[cc->n_cnames++] = tok;
			cc->cnames[cc->n_cnames] = (char *)name;
			ce->controllers[ce->n_controllers++] = cc;
		}
	}
	return v2 ? save_v2_dirs(dc, ce) : 0;
}

int dump_cgroups(struct dump_ctx *dc)
{
	CgroupEntry ce = CGROUP_ENTRY__INIT;
	char **raw = NULL;
	int ret = 0;

	if (dc->opts->cgroups_ignore && !same_cgns(dc->tasks[0]->pid)) {
		pr_err("process %d is in a cgroup namespace of its own, saved in cgroup.img: "
		       "not with --manage-cgroups=ignore\n", dc->tasks[0]->pid);
		return -EOPNOTSUPP;
	}
	if (dc->opts->cgroups_ignore)
		return 0;
	ce.sets = arena_alloc(&dc->arena, dc->nr_tasks * sizeof(*ce.sets));
	raw = calloc(dc->nr_tasks, sizeof(*raw));
	if (!ce.sets || !raw) {
		free(raw);
		return -ENOMEM;
	}
	for (int i = 0; i < dc->nr_tasks && !ret; i++) {
		struct dump_task *t = dc->tasks[i];
		char *buf;
		size_t s;

		/* Nothing of it runs again in a cgroup; the kernel shows it in the roots. */
		if (t->zombie)
			continue;
		buf = read_proc(t->pid, "cgroup", NULL);
		if (!buf) {
			pr_perror("can't read /proc/%d/cgroup", t->pid);
			ret = -errno;
			break;
		}
		for (s = 0; s < ce.n_sets && strcmp(raw[s], buf); s++)
			;
		if (s < ce.n_sets) {
			free(buf);
		} else {
			CgSetEntry *set = arena_alloc(&dc->arena, sizeof(*set));
			char *copy = arena_strdup(&dc->arena, buf);

			raw[s] = buf;
			if (!set || !copy) {
				ret = -ENOMEM;
				break;
			}
			cg_set_entry__init(set);
			set->id = s + 1;
			ret = parse_set(&dc->arena, copy, set);
			ce.sets[ce.n_sets++] = set;
		}
		t->cg_set = s + 1;
	}
	/*
	 * root_cg_set is the dumper's set, as CRIU writes criu's: its restore
	 * leaves a root in that set where criu is, and moves one in another.
	 * amber's own, if a task shares it; else one no task is in.
	 */
	if (!ret) {
		cleanup_free char *mine = read_proc(0, "cgroup", NULL);
		size_t s;

		for (s = 0; mine && s < ce.n_sets && strcmp(raw[s], mine); s++)
			;
		dc->dumper_cg_set = s + 1;
	}
	for (size_t s = 0; s < ce.n_sets; s++)
		free(raw[s]);
	free(raw);
	if (!ret && dc->tasks[0]->cg_set && !same_cgns(dc->tasks[0]->pid))
		ret = cgns_prefixes(dc, &ce, ce.sets[dc->tasks[0]->cg_set - 1]);
	if (!ret)
		ret = save_controllers(dc, &ce);
	if (ret)
		return ret;
	pr_info("%zu cgroup set(s) in cgroup.img\n", ce.n_sets);
	return img_write_one(dc->dirfd, IMG_CGROUP, 0, &ce.base);
}

/*
 * --freeze-cgroup: the cgroup (v2 cgroup.freeze, else v1 freezer.state)
 * is frozen while the tree is seized, so that nothing in it forks or
 * exits under amber's walk, then thawed for the seized threads to stop.
 */
static int write_str(const char *dir, const char *file, const char *val)
{
	char path[PATH_MAX];
	int fd, ret = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, val, strlen(val)) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

static bool cg_v2(const char *dir)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/cgroup.freeze", dir);
	return access(path, F_OK) == 0;
}

static bool cg_frozen(const char *dir, bool v2)
{
	char path[PATH_MAX];
	cleanup_free char *s = NULL;

	snprintf(path, sizeof(path), "%s/%s", dir, v2 ? "cgroup.events" : "freezer.state");
	s = read_file_at(AT_FDCWD, path, NULL);
	return s && (v2 ? strstr(s, "frozen 1") != NULL : !strncmp(s, "FROZEN", 6));
}

int dump_cg_freeze(const char *dir, bool freeze)
{
	bool v2 = cg_v2(dir);
	int ret = v2 ? write_str(dir, "cgroup.freeze", freeze ? "1" : "0")
		     : write_str(dir, "freezer.state", freeze ? "FROZEN" : "THAWED");

	if (ret) {
		pr_err("can't %s the cgroup %s: %s\n", freeze ? "freeze" : "thaw", dir,
		       strerror(-ret));
		return ret;
	}
	if (!freeze)
		return 0;
	/* Frozen once every task in it has stopped: tasks in a syscall take a moment. */
	for (int i = 0; i < 1000; i++) {
		if (cg_frozen(dir, v2)) {
			pr_info("froze the cgroup %s (cgroup %s)\n", dir, v2 ? "v2" : "v1 freezer");
			return 0;
		}
		usleep(5000);
	}
	pr_err("the cgroup %s did not freeze in 5 s\n", dir);
	dump_cg_freeze(dir, false);
	return -ETIMEDOUT;
}

static bool in_tree(const struct dump_ctx *dc, pid_t pid)
{
	for (int i = 0; i < dc->nr_tasks; i++)
		if (dc->tasks[i]->pid == pid)
			return true;
	return false;
}

/* Every process of @dir and its sub-cgroups is in the tree: none would be lost. */
int dump_cg_check_members(const struct dump_ctx *dc, const char *dir)
{
	char path[PATH_MAX];
	cleanup_free char *procs = NULL;
	DIR *d;
	struct dirent *de;
	int ret = 0;

	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	procs = read_file_at(AT_FDCWD, path, NULL);
	if (!procs) {
		pr_perror("can't read %s", path);
		return -errno;
	}
	for (char *p = procs; *p;) {
		char *end;
		long pid = strtol(p, &end, 10);

		if (end == p)
			break;
		if (!in_tree(dc, pid)) {
			pr_err("process %ld is in the cgroup %s but not in the tree of %d: it "
			       "would be lost\n",
			       pid, dir, dc->opts->pid);
			return -EBUSY;
		}
		p = end + (*end == '\n');
	}
	d = opendir(dir);
	if (!d)
		return -errno;
	while (!ret && (de = readdir(d))) {
		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		ret = dump_cg_check_members(dc, path);
	}
	closedir(d);
	return ret;
}
