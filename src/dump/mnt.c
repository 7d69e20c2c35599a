// SPDX-License-Identifier: MIT
/*
 * The tree's own mount namespace, saved as CRIU does: one mnt_entry per
 * line of the root's mountinfo in mountpoints-<id>.img, the files of each
 * tmpfs in tmpfs-dev-<dev>.tar.gz.img. The root mount is named, not
 * saved: the restore is given its directory (--root), or mounts the
 * saved overlay there again. An overlay is saved as CRIU saves it: type,
 * source and options, its layer directories being paths of amber's (the
 * host's). A mount amber cannot make again fails the dump, naming it
 * (docs/namespaces.md).
 */
#define LOG_PREFIX "mnt: "
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/log.h"
#include "base/overlay.h"
#include "base/util.h"
#include "dump/dump.h"
#include "dump/ns.h"
#include "image/image.h"
#include "mnt.pb-c.h"

struct mnt_line {
	MntEntry e;
	unsigned maj, min;
	char *buf; /* the line, which root/mountpoint/source/options point into */
	char fs[64];
	bool propagate_from;
};

static const struct {
	const char *name;
	Fstype type;
} fstypes[] = {
    {"proc", FSTYPE__PROC},
    {"sysfs", FSTYPE__SYSFS},
    {"tmpfs", FSTYPE__TMPFS},
    {"devpts", FSTYPE__DEVPTS},
    {"mqueue", FSTYPE__MQUEUE},
    {"cgroup", FSTYPE__CGROUP},
    {"cgroup2", FSTYPE__CGROUP2},
    {"devtmpfs", FSTYPE__DEVTMPFS},
    {OVL_FSTYPE_NAME, FSTYPE__OVERLAYFS},
};

static unsigned fstype_of(const char *fs)
{
	for (size_t i = 0; i < sizeof(fstypes) / sizeof(fstypes[0]); i++)
		if (!strcmp(fstypes[i].name, fs))
			return fstypes[i].type;
	return FSTYPE__UNSUPPORTED;
}

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static void unescape(char *s)
{
	char *d = s;

	while (*s) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*d++ = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 | (s[3] - '0'));
			s += 4;
		} else {
			*d++ = *s++;
		}
	}
	*d = 0;
}

/* Per-mount flags of mountinfo's 6th field as MS_* (what MS_REMOUNT|MS_BIND takes). */
static unsigned mnt_flags(const char *opts, unsigned *sb_ro)
{
	static const struct {
		const char *name;
		unsigned flag;
	} known[] = {
	    {"ro", MS_RDONLY},	       {"nosuid", MS_NOSUID},
	    {"nodev", MS_NODEV},       {"noexec", MS_NOEXEC},
	    {"noatime", MS_NOATIME},   {"nodiratime", MS_NODIRATIME},
	    {"relatime", MS_RELATIME}, {"strictatime", MS_STRICTATIME},
	};
	char buf[512], *tok, *save = NULL;
	unsigned flags = 0;

	snprintf(buf, sizeof(buf), "%s", opts);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (sb_ro && !strcmp(tok, "ro"))
			*sb_ro = MS_RDONLY;
		for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
			if (!strcmp(tok, known[i].name))
				flags |= known[i].flag;
	}
	return flags;
}

/* The superblock options without rw/ro (sb_flags carries that), in place. */
static void strip_rw(char *opts)
{
	char *out = opts, *tok, *save = NULL;
	cleanup_free char *copy = strdup(opts);

	if (!copy)
		return;
	*out = 0;
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (!strcmp(tok, "rw") || !strcmp(tok, "ro"))
			continue;
		if (out != opts)
			*out++ = ',';
		out += sprintf(out, "%s", tok);
	}
}

/* id parent maj:min root mountpoint opts [optional...] - fstype source superopts */
static int parse_line(char *line, struct mnt_line *m)
{
	char *f[6], *save = NULL, *tok, *sep = strstr(line, " - ");
	char *fs, *src, *sopts;
	int i;

	if (!sep)
		return -EINVAL;
	*sep = 0;
	fs = strtok_r(sep + 3, " ", &save);
	src = strtok_r(NULL, " ", &save);
	sopts = strtok_r(NULL, " ", &save);
	if (!fs || !src || !sopts)
		return -EINVAL;
	save = NULL;
	for (i = 0, tok = strtok_r(line, " ", &save); tok && i < 6;
	     tok = strtok_r(NULL, " ", &save))
		f[i++] = tok;
	if (i < 6 || sscanf(f[2], "%u:%u", &m->maj, &m->min) != 2)
		return -EINVAL;
	mnt_entry__init(&m->e);
	m->e.mnt_id = strtoul(f[0], NULL, 10);
	m->e.parent_mnt_id = strtoul(f[1], NULL, 10);
	m->e.root_dev = m->maj << 20 | m->min; /* the kernel's encoding, as CRIU */
	unescape(f[3]);
	unescape(f[4]);
	unescape(src);
	m->e.root = f[3];
	m->e.mountpoint = f[4];
	m->e.flags = mnt_flags(f[5], NULL);
	for (; tok; tok = strtok_r(NULL, " ", &save)) {
		if (!strncmp(tok, "shared:", 7))
			m->e.has_shared_id = true, m->e.shared_id = strtoul(tok + 7, NULL, 10);
		else if (!strncmp(tok, "master:", 7))
			m->e.has_master_id = true, m->e.master_id = strtoul(tok + 7, NULL, 10);
		else if (!strncmp(tok, "propagate_from:", 15))
			m->propagate_from = true;
	}
	snprintf(m->fs, sizeof(m->fs), "%s", fs);
	m->e.fstype = fstype_of(fs);
	m->e.source = src;
	m->e.has_sb_flags = true;
	mnt_flags(sopts, &m->e.sb_flags);
	strip_rw(sopts);
	m->e.options = sopts;
	return 0;
}

/* devpts is always a new instance since 4.7; CRIU's images say so. */
static int devpts_opts(struct dump_ctx *dc, struct mnt_line *m)
{
	size_t len = strlen(m->e.options) + sizeof(",newinstance");
	char *o;

	if (m->e.fstype != FSTYPE__DEVPTS || strstr(m->e.options, "newinstance"))
		return 0;
	o = arena_alloc(&dc->arena, len);
	if (!o)
		return -ENOMEM;
	snprintf(o, len, "%s%snewinstance", m->e.options, m->e.options[0] ? "," : "");
	m->e.options = o;
	return 0;
}

/*
 * In the tar's child, for a tree in a user namespace of its own: a copy of
 * the tmpfs mount without the mounts on it (as CRIU reads a tmpfs) made in
 * the tree's mount namespace, then back in amber's (where tar is), as the
 * root of the tree's user namespace (the owners in the archive are the ids
 * the tree sees). The files there are the tmpfs's own, not the devices a
 * container binds over them, which its root could not make again.
 */
static int tmpfs_alone(const struct dump_ctx *dc, pid_t pid, const struct mnt_line *m,
		       char *dir, size_t len)
{
	char path[64];
	int root, mnt, own = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC), tree;

	snprintf(path, sizeof(path), "/proc/%d/root", pid);
	root = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	snprintf(path, sizeof(path), "/proc/%d/ns/mnt", pid);
	mnt = open(path, O_RDONLY | O_CLOEXEC);
	if (root < 0 || mnt < 0 || own < 0 || setns(mnt, CLONE_NEWNS)) {
		pr_perror("can't enter the mount namespace of %d", pid);
		return -1;
	}
	/* EINVAL: mounts locked on it (a host's /sys bound in): read through them. */
	tree = open_tree(root, m->e.mountpoint[1] ? m->e.mountpoint + 1 : ".", OPEN_TREE_CLONE);
	if ((tree < 0 && errno != EINVAL) || setns(own, CLONE_NEWNS) ||
	    dump_ns_user_enter(dc, pid) || (tree >= 0 && fchdir(tree))) {
		pr_perror("can't copy the mount on %s as the root of %d's user namespace",
			  m->e.mountpoint, pid);
		return -1;
	}
	if (tree >= 0)
		snprintf(dir, len, ".");
	return 0;
}

/*
 * tar of the tmpfs on @mp in @pid's mount namespace (as CRIU: --one-file-system),
 * run as root of the tree's user namespace if it has one: the owners in
 * the archive are the ids the tree sees, as in CRIU's.
 */
static int dump_tmpfs(struct dump_ctx *dc, pid_t pid, const struct mnt_line *m)
{
	char dir[PATH_MAX], name[64];
	int fd, st;
	pid_t child;

	img_name(IMG_TMPFS_DEV, m->e.root_dev, name, sizeof(name));
	if (faccessat(dc->dirfd, name, F_OK, 0) == 0)
		return 0; /* another mount of the same tmpfs */
	snprintf(dir, sizeof(dir), "/proc/%d/root%s", pid, m->e.mountpoint);
	fd = openat(dc->dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		pr_perror("can't create %s", name);
		return -errno;
	}
	child = fork();
	if (child == 0) {
		if (dup2(fd, 1) < 0 || (dc->ns.user.id && tmpfs_alone(dc, pid, m, dir, sizeof(dir))))
			_exit(126);
		execlp("tar", "tar", "--create", "--gzip", "--no-unquote", "--no-wildcards",
		       "--one-file-system", "--check-links", "--preserve-permissions", "--sparse",
		       "--numeric-owner", "--directory", dir, ".", (char *)NULL);
		_exit(127);
	}
	close(fd);
	if (child < 0 || waitpid(child, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st)) {
		pr_err("tar of the tmpfs on %s (%s) failed%s\n", m->e.mountpoint, dir,
		       child < 0 ? ": can't fork" : "");
		return -EIO;
	}
	pr_info("tmpfs on %s: %s\n", m->e.mountpoint, name);
	return 0;
}

/* Another mount, earlier in the list, of the same filesystem from its top. */
static bool has_top_mount(const struct mnt_line *ms, int n, const struct mnt_line *m)
{
	for (int i = 0; i < n; i++)
		if (&ms[i] != m && ms[i].e.root_dev == m->e.root_dev &&
		    !strcmp(ms[i].e.root, "/") && !ms[i].e.ext_key)
			return true;
	return false;
}

struct layer_check {
	pid_t pid;
	const struct mnt_line *m;
};

/* The restore mounts the overlay again from amber's view: paths it can name. */
static int check_layer(const char *key, const char *path, void *arg)
{
	const struct layer_check *lc = arg;

	if (ovl_path_ok(path))
		return 0;
	pr_err("process %d: overlay mount %u on %s: its %s %s is not an absolute path amber "
	       "can name (the kernel shows it as its mounter gave it): name the mount external "
	       "(--external mnt[%s]:KEY)\n",
	       lc->pid, lc->m->e.mnt_id, lc->m->e.mountpoint, key, path, lc->m->e.mountpoint);
	return -EOPNOTSUPP;
}

/* Can the restore make @m again? 0, or -EOPNOTSUPP naming it. */
static int check_mount(pid_t pid, const struct mnt_line *ms, int n, const struct mnt_line *m,
		       bool is_root)
{
	const char *mp = m->e.mountpoint;

	if (!path_no_dots(mp) || !path_no_dots(m->e.root)) {
		pr_err("process %d: mount %u on %s: a path amber cannot name\n", pid, m->e.mnt_id,
		       mp);
		return -EOPNOTSUPP;
	}
	if (is_root || m->e.ext_key)
		return 0;
	if (m->e.has_master_id || m->propagate_from) {
		pr_err("process %d: mount %u (%s on %s) is a slave mount: not supported, name it "
		       "external (--external mnt[%s]:KEY)\n",
		       pid, m->e.mnt_id, m->fs, mp, mp);
		return -EOPNOTSUPP;
	}
	if (strcmp(m->e.root, "/")) {
		if (has_top_mount(ms, n, m))
			return 0; /* bound again from that one */
		pr_err(
		    "process %d: mount %u on %s is a bind mount of %s of a %s mounted nowhere "
		    "else in the tree: not supported, name it external (--external mnt[%s]:KEY)\n",
		    pid, m->e.mnt_id, mp, m->e.root, m->fs, mp);
		return -EOPNOTSUPP;
	}
	switch (m->e.fstype) {
	case FSTYPE__PROC:
	case FSTYPE__SYSFS:
	case FSTYPE__TMPFS:
	case FSTYPE__DEVPTS:
	case FSTYPE__MQUEUE:
	case FSTYPE__CGROUP2:
	case FSTYPE__CGROUP: /* v1: the hierarchy its options name, mounted again */
		return 0;
	case FSTYPE__OVERLAYFS:
		return ovl_for_each_layer(m->e.options, check_layer,
					  &(struct layer_check){.pid = pid, .m = m});
	default:
		pr_err("process %d: mount %u: %s on %s (%s) is not supported: name it external "
		       "(--external mnt[%s]:KEY)\n",
		       pid, m->e.mnt_id, m->fs, mp, m->e.source, mp);
		return -EOPNOTSUPP;
	}
}

int dump_mnt_ns(struct dump_ctx *dc, pid_t root)
{
	cleanup_free char *buf = read_proc(root, "mountinfo", NULL);
	cleanup_free struct mnt_line *ms = NULL;
	char *line, *save = NULL;
	struct img *img;
	int n = 0, ret = 0, root_idx = -1;

	if (!buf)
		return -errno;
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		struct mnt_line *p = xrealloc_array(ms, n + 1, sizeof(*ms));

		if (!p)
			return -ENOMEM;
		ms = p;
		memset(&ms[n], 0, sizeof(ms[n]));
		if (parse_line(line, &ms[n])) {
			pr_err("/proc/%d/mountinfo: can't parse a line\n", root);
			return -EINVAL;
		}
		n++;
	}
	/* The root mount: the one whose parent is not in the namespace's list. */
	for (int i = 0; i < n && root_idx < 0; i++) {
		bool parent_seen = false;

		for (int j = 0; j < n; j++)
			parent_seen |= ms[j].e.mnt_id == ms[i].e.parent_mnt_id && j != i;
		if (!parent_seen && !strcmp(ms[i].e.mountpoint, "/"))
			root_idx = i;
	}
	if (root_idx < 0) {
		pr_err("/proc/%d/mountinfo: no root mount\n", root);
		return -EINVAL;
	}
	for (int i = 0; i < n; i++) {
		const char *key =
		    ext_mount_lookup(dc->opts->ext_mnts, dc->opts->nr_ext_mnts, ms[i].e.mountpoint);

		/* Shown bound in from outside: whatever it holds stays outside. */
		if (key && i != root_idx)
			ms[i].e.ext_key = (char *)key;
	}
	for (int i = 0; i < n && !ret; i++)
		ret = check_mount(root, ms, n, &ms[i], i == root_idx);
	/* Only the host's root may mount a cgroup v1 hierarchy. */
	for (int i = 0; i < n && !ret; i++)
		if (dc->ns.user.id && ms[i].e.fstype == FSTYPE__CGROUP && !ms[i].e.ext_key) {
			pr_err("process %d: mount %u: cgroup v1 on %s in a tree with its own user "
			       "namespace: a restore could not mount it there; name it external "
			       "(--external mnt[%s]:KEY)\n", root, ms[i].e.mnt_id,
			       ms[i].e.mountpoint, ms[i].e.mountpoint);
			ret = -EOPNOTSUPP;
		}
	for (int i = 0; i < n && !ret; i++)
		ret = devpts_opts(dc, &ms[i]);
	for (int i = 0; i < n && !ret; i++)
		ret = dump_ns_user_mount_opts(dc, &ms[i].e.options);
	if (ret)
		return ret;
	dc->ns.mnt_ns_id = dump_new_id(dc);
	for (int i = 0; i < n && !ret; i++)
		if (i != root_idx && !ms[i].e.ext_key && ms[i].e.fstype == FSTYPE__TMPFS &&
		    !strcmp(ms[i].e.root, "/"))
			ret = dump_tmpfs(dc, root, &ms[i]);
	if (ret)
		return ret;
	img = img_open(dc->dirfd, IMG_MNTS, true, dc->ns.mnt_ns_id);
	if (!img)
		return -errno;
	/* The root first, then mountinfo's order: parents before children. */
	ret = img_write_msg(img, &ms[root_idx].e.base);
	for (int i = 0; i < n && !ret; i++)
		if (i != root_idx)
			ret = img_write_msg(img, &ms[i].e.base);
	if (!ret)
		ret = img_close(img);
	else
		img_close(img);
	pr_info("mount namespace of %d: %d mounts in mountpoints-%u.img\n", root, n,
		dc->ns.mnt_ns_id);
	return ret;
}
