// SPDX-License-Identifier: GPL-2.0
/*
 * Run as root of a user namespace of its own with a non-identity map
 * (test_zdtm.py starts it under helpers/userns_exec: 0 -> 100000, 65536):
 * it takes other ids, groups and capabilities, owns a file by an id of
 * the namespace, and after the restore must see the same namespace maps,
 * the same ids, groups, capabilities and bounding set, the file with the
 * same owner, and must create files as the namespace's root, not as the
 * host's (an id the namespace does not map would show as 65534).
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "zdtm.h"

#define FILE_UID 1000
#define FILE_GID 1001
#define DROPPED_CAP CAP_SYS_ADMIN
#define INH_CAP CAP_NET_RAW
#define BOUND_DROPPED CAP_MKNOD

struct seen {
	char uid_map[256], gid_map[256], setgroups[16];
	uid_t r, e, s;
	gid_t rg, eg, sg;
	gid_t groups[8];
	int nr_groups;
	struct __user_cap_data_struct caps[2];
	uint64_t bounding;
	struct stat file;
};

static int read_small(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY), n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = 0;
	return 0;
}

static int look(struct seen *s, int fd)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };

	memset(s, 0, sizeof(*s));
	if (read_small("/proc/self/uid_map", s->uid_map, sizeof(s->uid_map)) ||
	    read_small("/proc/self/gid_map", s->gid_map, sizeof(s->gid_map)) ||
	    read_small("/proc/self/setgroups", s->setgroups, sizeof(s->setgroups)))
		return fail_errno("reading the maps"), -1;
	if (getresuid(&s->r, &s->e, &s->s) || getresgid(&s->rg, &s->eg, &s->sg))
		return fail_errno("getresuid"), -1;
	s->nr_groups = getgroups(8, s->groups);
	if (s->nr_groups < 0)
		return fail_errno("getgroups"), -1;
	if (syscall(SYS_capget, &hdr, s->caps))
		return fail_errno("capget"), -1;
	for (int cap = 0; cap < 64; cap++)
		if (prctl(PR_CAPBSET_READ, cap) == 1)
			s->bounding |= 1ULL << cap;
	if (fstat(fd, &s->file))
		return fail_errno("fstat"), -1;
	return 0;
}

static int take_ids(void)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct caps[2];
	gid_t groups[] = { 10, 20, 30 };

	if (!strncmp(test_opt("setgroups") ?: "", "deny", 4)) {
		/* Not allowed here: the groups it was born with stay. */
		if (setgroups(3, groups) == 0 || errno != EPERM)
			return fail("setgroups worked with setgroups denied"), -1;
	} else if (setgroups(3, groups)) {
		return fail_errno("setgroups"), -1;
	}
	if (setresgid(100, 101, 102) || setresuid(200, 0, 201))
		return fail_errno("setresuid/setresgid"), -1;
	if (prctl(PR_CAPBSET_DROP, BOUND_DROPPED))
		return fail_errno("PR_CAPBSET_DROP"), -1;
	if (syscall(SYS_capget, &hdr, caps))
		return fail_errno("capget"), -1;
	caps[0].effective &= ~(1U << DROPPED_CAP);
	caps[0].permitted &= ~(1U << DROPPED_CAP);
	caps[0].inheritable |= 1U << INH_CAP;
	if (syscall(SYS_capset, &hdr, caps))
		return fail_errno("capset"), -1;
	return 0;
}

static int same(const struct seen *a, const struct seen *b)
{
	if (strcmp(a->uid_map, b->uid_map) || strcmp(a->gid_map, b->gid_map))
		return fail("the maps changed: '%s' '%s' -> '%s' '%s'", a->uid_map, a->gid_map,
			    b->uid_map, b->gid_map), 0;
	if (strcmp(a->setgroups, b->setgroups))
		return fail("setgroups %s -> %s", a->setgroups, b->setgroups), 0;
	if (a->r != b->r || a->e != b->e || a->s != b->s || a->rg != b->rg || a->eg != b->eg ||
	    a->sg != b->sg)
		return fail("ids %u/%u/%u %u/%u/%u -> %u/%u/%u %u/%u/%u", a->r, a->e, a->s, a->rg,
			    a->eg, a->sg, b->r, b->e, b->s, b->rg, b->eg, b->sg), 0;
	if (a->nr_groups != b->nr_groups ||
	    memcmp(a->groups, b->groups, a->nr_groups * sizeof(gid_t)))
		return fail("groups changed (%d -> %d of them)", a->nr_groups, b->nr_groups), 0;
	if (memcmp(a->caps, b->caps, sizeof(a->caps)))
		return fail("capabilities %#x/%#x/%#x -> %#x/%#x/%#x", a->caps[0].effective,
			    a->caps[0].permitted, a->caps[0].inheritable, b->caps[0].effective,
			    b->caps[0].permitted, b->caps[0].inheritable), 0;
	if (a->bounding != b->bounding)
		return fail("bounding set %#llx -> %#llx", (unsigned long long)a->bounding,
			    (unsigned long long)b->bounding), 0;
	if (b->file.st_uid != FILE_UID || b->file.st_gid != FILE_GID)
		return fail("the file is owned by %u:%u, not %u:%u", b->file.st_uid,
			    b->file.st_gid, FILE_UID, FILE_GID), 0;
	return 1;
}

int main(int argc, char **argv)
{
	struct seen before, after;
	struct stat made;
	char map[256];
	unsigned int inside, outside;
	int fd, fd2;

	test_init(argc, argv);
	if (read_small("/proc/self/uid_map", map, sizeof(map)))
		return fail_errno("uid_map"), 1;
	if (sscanf(map, "%u %u", &inside, &outside) != 2 || inside == outside)
		return fail("not in a user namespace with a non-identity map: %s", map), 1;
	fd = open("userns.file", O_RDWR | O_CREAT | O_TRUNC, 0640);
	if (fd < 0 || fchown(fd, FILE_UID, FILE_GID))
		return fail_errno("making the file"), 1;
	if (take_ids() || look(&before, fd))
		return 1;

	test_daemon();
	test_waitsig();

	if (look(&after, fd) || !same(&before, &after))
		return 1;
	/* fsuid 0 and fsgid 101 of the namespace: not the host's root. */
	fd2 = open("userns.made", O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd2 < 0 || fstat(fd2, &made))
		return fail_errno("creating a file after the restore"), 1;
	if (made.st_uid != 0 || made.st_gid != 101)
		return fail("a new file is owned by %u:%u, not 0:101", made.st_uid, made.st_gid),
		       1;
	close(fd2);
	close(fd);
	unlink("userns.made");
	unlink("userns.file");
	pass();
	return 0;
}
