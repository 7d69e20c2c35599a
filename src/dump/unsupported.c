// SPDX-License-Identifier: MIT
/* What amber cannot save yet is refused, never dropped (unsupported.h). */
#define LOG_PREFIX "dump: "
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "base/proc.h"
#include "base/util.h"
#include "dump/unsupported.h"

/* A tree is restored into amber's own namespaces: any other is lost. */
static const char *const ns_names[] = { "mnt", "pid", "net", "ipc", "uts",
					"cgroup", "user", "time" };

struct mount_set {
	char **m; /* "root mountpoint options fstype source", sorted */
	int nr;
};

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void mount_set_free(struct mount_set *ms)
{
	for (int i = 0; i < ms->nr; i++)
		free(ms->m[i]);
	free(ms->m);
}

/* One mountinfo line without the ids that differ between two copies. */
static char *mount_key(char *line)
{
	char *f[6] = { 0 }, *fs = NULL, *src = NULL, *save = NULL, *tok, *key;
	int n = 0;
	bool dash = false;

	for (tok = strtok_r(line, " \n", &save); tok; tok = strtok_r(NULL, " \n", &save)) {
		if (dash && !fs)
			fs = tok;
		else if (dash && !src)
			src = tok;
		else if (!strcmp(tok, "-"))
			dash = true;
		else if (n < 6)
			f[n++] = tok;
	}
	if (n < 6 || !fs || !src)
		return NULL;
	if (asprintf(&key, "%s %s %s %s %s", f[3], f[4], f[5], fs, src) < 0)
		return NULL;
	return key;
}

static int read_mounts(const char *path, struct mount_set *ms)
{
	char line[4096];
	FILE *f = fopen(path, "re");
	int ret = 0;

	if (!f) {
		pr_perror("can't read %s", path);
		return -errno;
	}
	while (!ret && fgets(line, sizeof(line), f)) {
		char *key = mount_key(line);
		char **m = key ? xrealloc_array(ms->m, ms->nr + 1, sizeof(*m)) : NULL;

		if (!m) {
			free(key);
			ret = key ? -ENOMEM : -EINVAL;
			break;
		}
		ms->m = m;
		ms->m[ms->nr++] = key;
	}
	fclose(f);
	if (!ret && ms->nr)
		qsort(ms->m, ms->nr, sizeof(*ms->m), cmp_str);
	return ret;
}

/* A key of mount_key() for a proc file system on /proc. */
static bool is_proc_on_proc(const char *key)
{
	const char *opts = strchr(key, ' ');

	opts = opts ? strchr(opts + 1, ' ') : NULL;
	return !strncmp(key, "/ /proc ", 8) && opts && strstr(opts, " proc ");
}

/*
 * Another mount namespace is restored faithfully into amber's when both
 * hold the same mounts (`ip netns exec` makes a fresh copy each time):
 * compare the mount lists without their ids. With @proc_over, a task of
 * a pid namespace of its own, one more proc on /proc may be there (as
 * `unshare --pid --fork --mount-proc` mounts): ns.c saves it.
 */
bool dump_same_mounts(pid_t pid, bool proc_over)
{
	struct mount_set mine = { 0 }, theirs = { 0 };
	char path[64];
	bool same = false;

	snprintf(path, sizeof(path), "/proc/%d/mountinfo", pid);
	if (!read_mounts("/proc/self/mountinfo", &mine) && !read_mounts(path, &theirs)) {
		int i = 0, j = 0, extra = 0;

		/* Both sorted: walk them together, skipping their extra proc. */
		same = true;
		while (same && j < theirs.nr) {
			if (i < mine.nr && !strcmp(mine.m[i], theirs.m[j])) {
				i++, j++;
			} else if (proc_over && !extra && is_proc_on_proc(theirs.m[j])) {
				extra++, j++;
			} else {
				same = false;
			}
		}
		same = same && i == mine.nr;
	}
	mount_set_free(&mine);
	mount_set_free(&theirs);
	return same;
}

/* Both tasks in the same namespace of this type. */
static bool ns_shared(pid_t a, pid_t b, const char *type)
{
	char path[64];
	struct stat sa, sb;

	snprintf(path, sizeof(path), "/proc/%d/ns/%s", a, type);
	if (stat(path, &sa))
		return false;
	snprintf(path, sizeof(path), "/proc/%d/ns/%s", b, type);
	if (stat(path, &sb))
		return false;
	return sa.st_ino == sb.st_ino && sa.st_dev == sb.st_dev;
}

static int check_namespaces(pid_t pid, pid_t root)
{
	for (size_t i = 0; i < sizeof(ns_names) / sizeof(ns_names[0]); i++) {
		char path[64];
		struct stat task_ns, own_ns;

		snprintf(path, sizeof(path), "/proc/self/ns/%s", ns_names[i]);
		if (stat(path, &own_ns))
			continue; /* this kernel lacks the namespace type */
		snprintf(path, sizeof(path), "/proc/%d/ns/%s", pid, ns_names[i]);
		if (stat(path, &task_ns)) {
			int err = -errno;

			/*
			 * ENOENT or EACCES from a task that exited meanwhile (the
			 * kernel answers EACCES once it is reaped): the caller
			 * sees how it ended.
			 */
			if (err == -EACCES && proc_task_exited(pid))
				err = -ENOENT;
			if (err != -ENOENT)
				pr_err("can't read %s: %s\n", path, strerror(-err));
			return err;
		}
		if (task_ns.st_ino == own_ns.st_ino && task_ns.st_dev == own_ns.st_dev)
			continue;
		/*
		 * Pid namespaces: the root's if it is their init (ns.c), nested
		 * ones below it (pidns.c checks, once the tree is frozen).
		 */
		if (!strcmp(ns_names[i], "pid"))
			continue;
		/*
		 * The tree's own UTS, IPC, net, time, user (ns.c), cgroup
		 * (cgroup.c) namespaces: one per tree.
		 */
		if (!strcmp(ns_names[i], "uts") || !strcmp(ns_names[i], "ipc") ||
		    !strcmp(ns_names[i], "net") ||
		    !strcmp(ns_names[i], "time") || !strcmp(ns_names[i], "cgroup") ||
		    !strcmp(ns_names[i], "user")) {
			if (ns_shared(pid, root, ns_names[i]))
				continue;
			pr_err("process %d is in a %s namespace other than the tree root's (%d): "
			       "nested %s namespaces are not supported yet\n", pid, ns_names[i],
			       root, ns_names[i]);
			return -EOPNOTSUPP;
		}
		/* Its own mounts are saved (mnt.c), the tree's one mount namespace. */
		if (!strcmp(ns_names[i], "mnt") && ns_shared(pid, root, "mnt"))
			continue;
		pr_err("process %d is in its own %s namespace: namespaces are not supported "
		       "yet (the restore would put it in amber's)\n", pid, ns_names[i]);
		return -EOPNOTSUPP;
	}
	return 0;
}

/*
 * unshare(CLONE_NEWTIME) leaves the caller in its time namespace (until
 * it execs) and only its future children go to the new one, which the
 * restore would not make: refused, whatever namespace the task is in.
 */
static int check_time_for_children(pid_t pid)
{
	char path[64];
	struct stat now, children;

	snprintf(path, sizeof(path), "/proc/%d/ns/time", pid);
	if (stat(path, &now))
		return errno == ENOENT ? 0 : -errno; /* no time namespaces, or gone */
	snprintf(path, sizeof(path), "/proc/%d/ns/time_for_children", pid);
	if (stat(path, &children))
		return errno == ENOENT ? 0 : -errno;
	if (now.st_ino == children.st_ino && now.st_dev == children.st_dev)
		return 0;
	pr_err("process %d made a time namespace for its children other than its own "
	       "(unshare(CLONE_NEWTIME) with no exec since): not supported\n", pid);
	return -EOPNOTSUPP;
}

int dump_check_supported(pid_t pid, pid_t root)
{
	int ret = check_namespaces(pid, root);

	return ret ? ret : check_time_for_children(pid);
}
