// SPDX-License-Identifier: MIT
/*
 * The tree's own user namespace: userns-ID.img checked at load, its maps
 * written by amber into the root it clones with CLONE_NEWUSER; or, when it
 * owns the tree's network namespace, into a child of amber's that makes
 * both before the root, which joins them (ns.h).
 */
#define LOG_PREFIX "userns: "
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/nsfs.h>
#include <linux/userfaultfd.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/log.h"
#include "image/image.h"
#include "restore/ns.h"
#include "restore/restore.h"
#include "core.pb-c.h"
#include "userns.pb-c.h"

/* The kernel's limit on the lines of one map (UID_GID_MAP_MAX_EXTENTS). */
#define MAX_EXTENTS 340
#define MAX_OWN_EXTENTS 512

struct own_map {
	uint64_t first[MAX_OWN_EXTENTS], count[MAX_OWN_EXTENTS];
	size_t nr;
};

/* amber's own map (@name of /proc/self): the ids its namespace has. */
static int read_own(const char *name, struct own_map *m)
{
	char path[64];
	unsigned int first, lower, count;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/%s", name);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	m->nr = 0;
	while (m->nr < MAX_OWN_EXTENTS && fscanf(f, "%u %u %u", &first, &lower, &count) == 3) {
		m->first[m->nr] = first;
		m->count[m->nr++] = count;
	}
	fclose(f);
	return 0;
}

/* [lo, lo + n) is held in amber's namespace, in pieces if need be. */
static bool own_maps(const struct own_map *m, uint64_t lo, uint64_t n)
{
	while (n) {
		size_t i;

		for (i = 0; i < m->nr; i++)
			if (lo >= m->first[i] && lo < m->first[i] + m->count[i])
				break;
		if (i == m->nr)
			return false;
		uint64_t end = m->first[i] + m->count[i];
		uint64_t take = end - lo < n ? end - lo : n;

		lo += take, n -= take;
	}
	return true;
}

static bool overlap(uint64_t a, uint64_t b, uint64_t n, uint64_t m)
{
	return a < b + m && b < a + n;
}

static int check_map(uint32_t id, const char *name, UidGidExtent **e, size_t n,
		     const struct own_map *own)
{
	if (!n || n > MAX_EXTENTS) {
		pr_err("userns-%u.img: %zu extents in the %s (1 to %d)\n", id, n, name,
		       MAX_EXTENTS);
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		uint64_t first = e[i]->first, lower = e[i]->lower_first, count = e[i]->count;

		if (!count || first + count > 1ULL << 32 || lower + count > 1ULL << 32) {
			pr_err("userns-%u.img: %s extent %zu (%u %u %u) is empty or past the last "
			       "id\n", id, name, i, e[i]->first, e[i]->lower_first, e[i]->count);
			return -EINVAL;
		}
		for (size_t j = 0; j < i; j++) {
			if (overlap(first, e[j]->first, count, e[j]->count) ||
			    overlap(lower, e[j]->lower_first, count, e[j]->count)) {
				pr_err("userns-%u.img: %s extents %zu and %zu overlap\n", id, name,
				       j, i);
				return -EINVAL;
			}
		}
		if (!own_maps(own, lower, count)) {
			pr_err("userns-%u.img: %s extent %zu maps ids %llu..%llu, which amber's "
			       "own user namespace does not have\n", id, name, i,
			       (unsigned long long)lower, (unsigned long long)(lower + count - 1));
			return -EINVAL;
		}
	}
	return 0;
}

static bool in_map(UidGidExtent **e, size_t n, uint32_t v)
{
	for (size_t i = 0; i < n; i++)
		if (v >= e[i]->first && v - e[i]->first < e[i]->count)
			return true;
	return false;
}

/* Every thread's saved ids (the tree's view) must be ids of the namespace. */
static int check_creds(struct rst_ctx *rc, const UsernsEntry *ue)
{
	for (int k = 0; k < rc->nr_tasks; k++) {
		struct rst_task *t = &rc->tasks[k];

		for (int i = 0; i < t->nr_threads && t->cores; i++) {
			const ThreadCoreEntry *tc = t->cores[i] ? t->cores[i]->thread_core : NULL;
			const CredsEntry *c = tc ? tc->creds : NULL;
			uint32_t uids[4], gids[4];

			if (!c)
				continue;
			uids[0] = c->uid, uids[1] = c->euid, uids[2] = c->suid, uids[3] = c->fsuid;
			gids[0] = c->gid, gids[1] = c->egid, gids[2] = c->sgid, gids[3] = c->fsgid;
			for (int j = 0; j < 4; j++) {
				if (!in_map(ue->uid_map, ue->n_uid_map, uids[j]) ||
				    !in_map(ue->gid_map, ue->n_gid_map, gids[j])) {
					pr_err("core-%d.img: uid %u gid %u, which its user namespace "
					       "does not map\n", t->pid, uids[j], gids[j]);
					return -EINVAL;
				}
			}
			for (size_t j = 0; j < c->n_groups && !ue->amber_setgroups_deny; j++) {
				if (!in_map(ue->gid_map, ue->n_gid_map, c->groups[j])) {
					pr_err("core-%d.img: group %u, which its user namespace does "
					       "not map\n", t->pid, c->groups[j]);
					return -EINVAL;
				}
			}
		}
	}
	return 0;
}

/*
 * --lazy-pages: inside the tree's user namespace userfaultfd() needs
 * vm.unprivileged_userfaultfd=1, and UFFDIO_API grants the fork event
 * only to the host's CAP_SYS_PTRACE. So each task makes its uffd from
 * /dev/userfaultfd, opened here (its ioctl checks no capability), and
 * amber, the tasks' tracer in the host's namespace, does its UFFDIO_API
 * (restore.c). The device must make one here too.
 */
static int open_uffd_dev(struct rst_ctx *rc)
{
	int fd = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
	int uffd = fd < 0 ? -1 : ioctl(fd, USERFAULTFD_IOC_NEW, O_CLOEXEC);

	if (uffd < 0) {
		int err = errno;

		pr_err("--lazy-pages: the tree is in a user namespace of its own, where its tasks "
		       "make their userfaultfd from /dev/userfaultfd (Linux 6.1+), which %s: %s; "
		       "restore it eagerly\n", fd < 0 ? "can't be opened" : "makes none",
		       strerror(err));
		if (fd >= 0)
			close(fd);
		return -err;
	}
	close(uffd);
	rc->uffd_dev_fd = fd;
	return 0;
}

int rst_ns_load_user(struct rst_ctx *rc, uint32_t id)
{
	struct own_map *own = calloc(1, sizeof(*own));
	UsernsEntry *ue;
	int ret;

	if (!own)
		return -ENOMEM;
	ret = img_read_one(rc->dirfd, IMG_USERNS, id, &userns_entry__descriptor,
			   (ProtobufCMessage **)&ue);
	if (ret) {
		pr_err("userns-%u.img (named by core-%d.img) can't be read\n", id, rc->tasks[0].pid);
		free(own);
		return ret;
	}
	rc->ns.user = ue;
	ret = read_own("uid_map", own);
	if (!ret)
		ret = check_map(id, "uid_map", ue->uid_map, ue->n_uid_map, own);
	if (!ret)
		ret = read_own("gid_map", own);
	if (!ret)
		ret = check_map(id, "gid_map", ue->gid_map, ue->n_gid_map, own);
	free(own);
	if (!ret)
		ret = check_creds(rc, ue);
	if (!ret && rc->opts && rc->opts->lazy && !rc->opts->pages_only && rc->uffd_dev_fd < 0)
		ret = open_uffd_dev(rc);
	if (!ret && !rc->ns.new_pid && (rc->nr_tasks > 1 || rc->tasks[0].nr_threads > 1)) {
		pr_err("core-%d.img: a user namespace of its own (%u) but amber's pid namespace, "
		       "with %d tasks and %d threads: only one single-threaded task can be "
		       "restored so\n", rc->tasks[0].pid, id, rc->nr_tasks, rc->tasks[0].nr_threads);
		ret = -EINVAL;
	}
	if (!ret)
		pr_info("the tree's own user namespace (%u): %zu uid and %zu gid extents, "
			"setgroups %s%s\n", id, ue->n_uid_map, ue->n_gid_map,
			ue->amber_setgroups_deny ? "deny" : "allow",
			ue->amber_owns_netns ? ", owner of the network namespace" : "");
	return ret;
}

static int write_proc(pid_t pid, const char *name, const char *text, size_t len)
{
	char path[64];
	int fd, ret = 0;

	snprintf(path, sizeof(path), "/proc/%d/%s", pid, name);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, text, len) != (ssize_t)len) {
		ret = -errno;
		pr_perror("can't write %s", path);
	}
	if (fd >= 0)
		close(fd);
	return ret;
}

/* One write of the whole map: the kernel takes a map once. */
static int write_map(pid_t pid, const char *name, UidGidExtent **e, size_t n)
{
	char buf[MAX_EXTENTS * 36];
	size_t len = 0;

	for (size_t i = 0; i < n; i++)
		len += snprintf(buf + len, sizeof(buf) - len, "%u %u %u\n", e[i]->first,
				e[i]->lower_first, e[i]->count);
	return write_proc(pid, name, buf, len);
}

int rst_ns_write_user_maps(struct rst_ctx *rc, pid_t pid)
{
	const UsernsEntry *ue = rc->ns.user;
	int ret = 0;

	/* Before gid_map: "deny" can't be written once a gid map is. */
	if (ue->amber_setgroups_deny)
		ret = write_proc(pid, "setgroups", "deny", 4);
	if (!ret)
		ret = write_map(pid, "uid_map", ue->uid_map, ue->n_uid_map);
	if (!ret)
		ret = write_map(pid, "gid_map", ue->gid_map, ue->n_gid_map);
	return ret;
}

int rst_ns_become_user_root(struct rst_ctx *rc)
{
	const UsernsEntry *ue = rc->ns.user;

	if (!in_map(ue->uid_map, ue->n_uid_map, 0) || !in_map(ue->gid_map, ue->n_gid_map, 0)) {
		pr_warn("the tree's user namespace maps no uid or gid 0: its root restores it "
			"as amber's ids, unmapped there\n");
		return 0;
	}
	/* The groups it was born with (amber's) mean nothing inside: none. */
	if (!ue->amber_setgroups_deny && setgroups(0, NULL))
		return -errno;
	if (setresgid(0, 0, 0) || setresuid(0, 0, 0))
		return -errno;
	return 0;
}

/* /proc/@pid/ns/@name, open: -errno if not. */
static int open_ns(pid_t pid, const char *name)
{
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/ns/%s", pid, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		pr_perror("can't open %s", path);
		return -errno;
	}
	return fd;
}

/*
 * The child that makes them: one unshare, so the network namespace is
 * owned by the new user namespace; it reports, waits for
 * amber to write the maps and open the namespaces, and exits.
 */
static void __attribute__((noreturn)) ns_maker(int ready, int done, int flags)
{
	int err = unshare(flags) ? errno : 0;
	char c;

	if (write(ready, &err, sizeof(err)) != sizeof(err) || err)
		_exit(1);
	while (read(done, &c, 1) < 0 && errno == EINTR)
		;
	_exit(0);
}

static int made_ns_open(struct rst_ctx *rc, pid_t pid)
{
	int ret = rst_ns_write_user_maps(rc, pid);

	if (ret)
		return ret;
	rc->ns.user_fd = open_ns(pid, "user");
	rc->ns.net.made_fd = open_ns(pid, "net");
	if (rc->ns.user_fd < 0)
		return rc->ns.user_fd;
	return rc->ns.net.made_fd < 0 ? rc->ns.net.made_fd : 0;
}

void rst_ns_user_close(struct rst_ns *ns)
{
	int *fds[] = { &ns->user_fd, &ns->net.made_fd };

	if (!ns->user_made)
		return;
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
		if (*fds[i] >= 0)
			close(*fds[i]);
		*fds[i] = -1;
	}
	ns->user_made = ns->net.made = false;
}

int rst_ns_make_user_net(struct rst_ctx *rc)
{
	int flags = CLONE_NEWUSER | CLONE_NEWNET;
	int ready[2], done[2], err = 0, ret;
	pid_t pid;

	if (!rc->ns.user || !rc->ns.user->amber_owns_netns)
		return 0;
	rc->ns.user_made = true;
	rc->ns.user_fd = rc->ns.net.made_fd = -1;
	if (pipe2(ready, O_CLOEXEC))
		return -errno;
	if (pipe2(done, O_CLOEXEC)) {
		ret = -errno;
		close(ready[0]);
		close(ready[1]);
		return ret;
	}
	pid = fork();
	if (pid == 0) {
		close(ready[0]);
		close(done[1]);
		ns_maker(ready[1], done[0], flags);
	}
	close(ready[1]);
	close(done[0]);
	if (pid < 0) {
		ret = -errno;
		close(ready[0]);
		close(done[1]);
		return ret;
	}
	ret = read(ready[0], &err, sizeof(err)) == sizeof(err) ? -err : -EIO;
	if (ret)
		pr_err("can't make the user namespace with its network namespace: %s\n",
		       strerror(-ret));
	if (!ret)
		ret = made_ns_open(rc, pid);
	close(ready[0]);
	close(done[1]);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	if (ret)
		return ret;
	rc->ns.net.made = true;
	pr_info("the user namespace made before the root, with the network namespace it owns\n");
	return 0;
}

int rst_ns_join_user(struct rst_ctx *rc)
{
	if (!rc->ns.user_made || rc->ns.user_joined)
		return 0;
	rc->ns.user_joined = true;
	return setns(rc->ns.user_fd, CLONE_NEWUSER) ? -errno : 0;
}

/* The inode of @fd's namespace, or of the one ioctl @req on it gives: 0 if none. */
static ino_t ns_ino(int fd, unsigned long req)
{
	struct stat st;
	int rel = req ? ioctl(fd, req) : fd;
	ino_t ino = rel >= 0 && !fstat(rel, &st) ? st.st_ino : 0;

	if (req && rel >= 0)
		close(rel);
	return ino;
}

int rst_ns_check_net_owner(struct rst_ctx *rc, pid_t root)
{
	int net, user;
	ino_t owner, theirs;

	if (!rc->ns.user_made)
		return 0;
	net = open_ns(root, "net");
	user = open_ns(root, "user");
	owner = net >= 0 ? ns_ino(net, NS_GET_USERNS) : 0;
	theirs = user >= 0 ? ns_ino(user, 0) : 0;
	if (net >= 0)
		close(net);
	if (user >= 0)
		close(user);
	if (!owner || owner != theirs) {
		pr_err("root %d: its network namespace is owned by user namespace %lu, not by its "
		       "own (%lu)\n", root, (unsigned long)owner, (unsigned long)theirs);
		return -EIO;
	}
	return 0;
}
