// SPDX-License-Identifier: MIT
/*
 * The tree's own user namespace: its uid and gid maps in userns-ID.img,
 * as CRIU writes them, and the ids the tree sees (ns.h).
 */
#define LOG_PREFIX "userns: "
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <linux/nsfs.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "dump/dump.h"
#include "dump/ns.h"
#include "image/image.h"
#include "core.pb-c.h"
#include "creds.pb-c.h"
#include "userns.pb-c.h"

/* The kernel's limit on the lines of one map (UID_GID_MAP_MAX_EXTENTS). */
#define MAX_EXTENTS 340
/* What the kernel shows for an id a namespace does not map (kernel.overflowgid). */
#define OVERFLOW_ID 65534

static int read_map(struct arena *a, pid_t pid, const char *name, struct dump_id_map **map,
		    size_t *nr)
{
	char path[64], line[128];
	struct dump_id_map *m = arena_array(a, struct dump_id_map, MAX_EXTENTS);
	FILE *f;
	size_t n = 0;

	if (!m)
		return -ENOMEM;
	snprintf(path, sizeof(path), "/proc/%d/%s", pid, name);
	f = fopen(path, "re");
	if (!f) {
		pr_perror("can't read %s", path);
		return -errno;
	}
	while (fgets(line, sizeof(line), f)) {
		if (n == MAX_EXTENTS ||
		    sscanf(line, "%u %u %u", &m[n].first, &m[n].lower, &m[n].count) != 3) {
			pr_err("%s: can't read the line '%s'\n", path, line);
			fclose(f);
			return -EBADMSG;
		}
		n++;
	}
	fclose(f);
	*map = m;
	*nr = n;
	return 0;
}

/* The inode of the namespace @fd's ioctl @req gives (its owner, its parent), 0 if none. */
static ino_t ns_related(int fd, unsigned long req)
{
	struct stat st;
	int rel = ioctl(fd, req);
	ino_t ino = rel >= 0 && !fstat(rel, &st) ? st.st_ino : 0;

	if (rel >= 0)
		close(rel);
	return ino;
}

static ino_t ns_ino_of(pid_t pid, const char *type, int *fd)
{
	char path[64];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/%d/ns/%s", pid, type);
	*fd = open(path, O_RDONLY | O_CLOEXEC);
	return *fd >= 0 && !fstat(*fd, &st) ? st.st_ino : 0;
}

/*
 * The restore makes the user namespace first and every other namespace
 * of the tree from inside it. The network one may be owned by it (made
 * inside it: the restore then makes it inside too, before the root) or
 * by amber's (made before it: amber makes it from its own thread).
 */
static int check_owners(struct dump_ctx *dc, pid_t root, ino_t userns, ino_t amber_userns)
{
	static const char *const types[] = { "pid", "mnt", "ipc", "uts", "cgroup", "time", "net" };

	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		int fd, mine;
		ino_t theirs = ns_ino_of(root, types[i], &fd), own = ns_ino_of(getpid(), types[i], &mine);
		ino_t owner = fd >= 0 ? ns_related(fd, NS_GET_USERNS) : 0;
		bool net = !strcmp(types[i], "net");

		if (fd >= 0)
			close(fd);
		if (mine >= 0)
			close(mine);
		/* This thread is in the tree's network namespace already (dump.c). */
		if (net && dc->host_netns_fd >= 0) {
			struct stat st;

			own = fstat(dc->host_netns_fd, &st) ? 0 : st.st_ino;
		}
		if (!theirs || theirs == own) /* no such type here, or amber's */
			continue;
		if (net && owner != userns && owner != amber_userns) {
			pr_err("process %d: its network namespace is owned by another user namespace "
			       "than its own and amber's: not supported\n", root);
			return -EOPNOTSUPP;
		}
		if (net) {
			dc->ns.user.owns_netns = owner == userns;
			continue;
		}
		if (owner != userns) {
			pr_err("process %d: its %s namespace is not owned by its user namespace (made "
			       "before it?): not supported, the restore makes it inside\n", root,
			       types[i]);
			return -EOPNOTSUPP;
		}
	}
	return 0;
}

static UidGidExtent **extents(struct arena *a, const struct dump_id_map *m, size_t nr)
{
	UidGidExtent **e = arena_array(a, UidGidExtent *, nr ? nr : 1);

	for (size_t i = 0; e && i < nr; i++) {
		e[i] = arena_new(a, UidGidExtent);
		if (!e[i])
			return NULL;
		uid_gid_extent__init(e[i]);
		e[i]->first = m[i].first;
		e[i]->lower_first = m[i].lower;
		e[i]->count = m[i].count;
	}
	return e;
}

static int read_setgroups(pid_t pid, bool *deny)
{
	char path[64], buf[16] = "";
	int fd, n;

	snprintf(path, sizeof(path), "/proc/%d/setgroups", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
	if (fd >= 0)
		close(fd);
	if (n < 0) {
		pr_perror("can't read %s", path);
		return -errno;
	}
	*deny = !strncmp(buf, "deny", 4);
	return 0;
}

int dump_ns_user(struct dump_ctx *dc, pid_t root)
{
	struct dump_userns *u = &dc->ns.user;
	UsernsEntry ue = USERNS_ENTRY__INIT;
	int fd, mine, ret;
	ino_t theirs = ns_ino_of(root, "user", &fd), own = ns_ino_of(getpid(), "user", &mine);
	ino_t parent = fd >= 0 ? ns_related(fd, NS_GET_PARENT) : 0;

	if (fd >= 0)
		close(fd);
	if (mine >= 0)
		close(mine);
	/* a kernel without user namespaces (CONFIG_USER_NS off) has no ns/user */
	if (!theirs && !own && access("/proc/self/ns/user", F_OK) && errno == ENOENT)
		return 0;
	if (!theirs || !own) {
		pr_perror("can't read the user namespaces of %d and amber", root);
		return -EIO;
	}
	if (theirs == own)
		return 0;
	if (parent != own) {
		pr_err("process %d is in a user namespace nested in another one than amber's: only "
		       "a user namespace whose parent is amber's is supported\n", root);
		return -EOPNOTSUPP;
	}
	/*
	 * Its children and threads are cloned with their pids by the tasks
	 * inside it, which may choose a pid only in a pid namespace it owns.
	 */
	if (!dc->pids.own_ns && (dc->nr_tasks > 1 || dc->tasks[0]->nr_threads > 1)) {
		pr_err("process %d is in a user namespace of its own but in amber's pid namespace, "
		       "with %d processes and %d threads: only a single-threaded process can be "
		       "restored so (the others' pids can't be chosen from inside)\n", root,
		       dc->nr_tasks, dc->tasks[0]->nr_threads);
		return -EOPNOTSUPP;
	}
	ret = check_owners(dc, root, theirs, own);
	if (!ret)
		ret = read_map(&dc->arena, root, "uid_map", &u->uid, &u->nr_uid);
	if (!ret)
		ret = read_map(&dc->arena, root, "gid_map", &u->gid, &u->nr_gid);
	if (!ret)
		ret = read_setgroups(root, &u->setgroups_deny);
	if (ret)
		return ret;
	if (!u->nr_uid || !u->nr_gid) {
		pr_err("process %d is in a user namespace with no uid or gid map written "
		       "(`unshare --user` alone): its ids mean nothing there, not supported\n", root);
		return -EOPNOTSUPP;
	}
	u->id = dump_new_id(dc);
	u->amber_id = dump_new_id(dc);
	ue.n_uid_map = u->nr_uid;
	ue.uid_map = extents(&dc->arena, u->uid, u->nr_uid);
	ue.n_gid_map = u->nr_gid;
	ue.gid_map = extents(&dc->arena, u->gid, u->nr_gid);
	if (!ue.uid_map || !ue.gid_map)
		return -ENOMEM;
	ue.has_amber_setgroups_deny = u->setgroups_deny;
	ue.amber_setgroups_deny = u->setgroups_deny;
	ue.has_amber_owns_netns = u->owns_netns;
	ue.amber_owns_netns = u->owns_netns;
	pr_info("user namespace of %d: %zu uid and %zu gid extents, setgroups %s%s, userns-%u.img\n",
		root, u->nr_uid, u->nr_gid, u->setgroups_deny ? "deny" : "allow",
		u->owns_netns ? ", owner of its network namespace" : "", u->id);
	return img_write_one(dc->dirfd, IMG_USERNS, u->id, &ue.base);
}

/* An id of amber's namespace as the tree sees it: -ERANGE if it is not mapped. */
static int to_tree(const struct dump_id_map *m, size_t nr, uint32_t host, uint32_t *in)
{
	for (size_t i = 0; i < nr; i++) {
		if (host >= m[i].lower && host - m[i].lower < m[i].count) {
			*in = m[i].first + (host - m[i].lower);
			return 0;
		}
	}
	return -ERANGE;
}

/*
 * /proc/PID/status shows the ids in the reader's (amber's) namespace;
 * the images hold them as the tree sees them, as CRIU saves them (its
 * parasite asks the task), and the restore sets them from inside.
 */
int dump_ns_user_creds(const struct dump_ctx *dc, pid_t tid, CredsEntry *c)
{
	const struct dump_userns *u = &dc->ns.user;
	uint32_t *uids[] = { &c->uid, &c->euid, &c->suid, &c->fsuid };
	uint32_t *gids[] = { &c->gid, &c->egid, &c->sgid, &c->fsgid };

	if (!u->id)
		return 0;
	for (int i = 0; i < 4; i++) {
		uint32_t host = *uids[i];

		if (to_tree(u->uid, u->nr_uid, host, uids[i])) {
			pr_err("thread %d has uid %u, which its user namespace does not map: the "
			       "restore could not give it back\n", tid, host);
			return -EOPNOTSUPP;
		}
		host = *gids[i];
		if (to_tree(u->gid, u->nr_gid, host, gids[i])) {
			pr_err("thread %d has gid %u, which its user namespace does not map: the "
			       "restore could not give it back\n", tid, host);
			return -EOPNOTSUPP;
		}
	}
	for (size_t i = 0; i < c->n_groups; i++) {
		uint32_t host = c->groups[i];

		/*
		 * setgroups denied: the groups it was born with stay, unmapped
		 * ones shown as the overflow gid; the restore can't set any.
		 */
		if (u->setgroups_deny && to_tree(u->gid, u->nr_gid, host, &c->groups[i])) {
			c->groups[i] = OVERFLOW_ID;
			continue;
		}
		if (to_tree(u->gid, u->nr_gid, host, &c->groups[i])) {
			pr_err("thread %d has the supplementary group %u, which its user namespace "
			       "does not map: the restore could not give it back\n", tid, host);
			return -EOPNOTSUPP;
		}
	}
	return 0;
}

int dump_ns_user_enter(const struct dump_ctx *dc, pid_t pid)
{
	char path[64];
	int fd, ret = 0;

	if (!dc->ns.user.id)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/ns/user", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || setns(fd, CLONE_NEWUSER) ||
	    (!dc->ns.user.setgroups_deny && setgroups(0, NULL)) || setresgid(0, 0, 0) ||
	    setresuid(0, 0, 0))
		ret = -errno;
	if (fd >= 0)
		close(fd);
	return ret;
}

int dump_ns_user_mount_opts(struct dump_ctx *dc, char **opts)
{
	const struct dump_userns *u = &dc->ns.user;
	size_t len = strlen(*opts) + 1, n = 0;
	char *buf, *out, *tok, *save = NULL;

	if (!u->id || !strstr(*opts, "id="))
		return 0;
	buf = arena_alloc(&dc->arena, len);
	out = arena_alloc(&dc->arena, len + 64);
	if (!buf || !out)
		return -ENOMEM;
	memcpy(buf, *opts, len);
	out[0] = 0;
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		bool uid = !strncmp(tok, "uid=", 4), gid = !strncmp(tok, "gid=", 4);
		uint32_t host, in;

		if ((uid || gid) && sscanf(tok + 4, "%u", &host) == 1) {
			if (to_tree(uid ? u->uid : u->gid, uid ? u->nr_uid : u->nr_gid, host, &in))
				in = OVERFLOW_ID;
			n += snprintf(out + n, len + 64 - n, "%s%cid=%u", n ? "," : "", uid ? 'u' : 'g',
				      in);
		} else {
			n += snprintf(out + n, len + 64 - n, "%s%s", n ? "," : "", tok);
		}
	}
	*opts = out;
	return 0;
}
