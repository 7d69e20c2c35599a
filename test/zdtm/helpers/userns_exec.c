// SPDX-License-Identifier: MIT
/*
 * userns_exec [--pid] [--net] [--deny-setgroups] OUTER COUNT CMD [ARG...]: runs
 * CMD as root of a new user namespace mapping its ids 0..COUNT-1 to
 * OUTER..OUTER+COUNT-1 (uids and gids), as `unshare --map-users` would
 * without newuidmap. With --pid, CMD's children are born in a new pid
 * namespace owned by it (its first child is init there). With --net, CMD
 * is in a new network namespace owned by it (one unshare of both).
 */
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int write_file(pid_t pid, const char *name, const char *text)
{
	char path[64];
	int fd, ok;

	snprintf(path, sizeof(path), "/proc/%d/%s", pid, name);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ok = write(fd, text, strlen(text)) == (ssize_t)strlen(text);
	close(fd);
	return ok ? 0 : -1;
}

int main(int argc, char **argv)
{
	int flags = CLONE_NEWUSER, deny = 0, go[2], st;
	char map[64], c = 0;
	pid_t me = getpid(), kid;

	while (argc > 1 && !strncmp(argv[1], "--", 2)) {
		if (!strcmp(argv[1], "--pid"))
			flags |= CLONE_NEWPID;
		else if (!strcmp(argv[1], "--net"))
			flags |= CLONE_NEWNET;
		else if (!strcmp(argv[1], "--deny-setgroups"))
			deny = 1;
		else
			return 100;
		argv++, argc--;
	}
	if (argc < 4 || pipe(go))
		return 100;
	snprintf(map, sizeof(map), "0 %s %s\n", argv[1], argv[2]);
	kid = fork();
	if (kid == 0) {
		/* The maps are written from the parent namespace, once it exists. */
		if (read(go[0], &c, 1) != 1)
			_exit(1);
		if ((deny && write_file(me, "setgroups", "deny")) || write_file(me, "uid_map", map) ||
		    write_file(me, "gid_map", map)) {
			perror("userns_exec: writing the maps");
			_exit(1);
		}
		_exit(0);
	}
	if (kid < 0 || unshare(flags)) {
		perror("userns_exec: unshare");
		return 1;
	}
	if (write(go[1], &c, 1) != 1 || waitpid(kid, &st, 0) != kid || st)
		return 1;
	if (setresgid(0, 0, 0) || setresuid(0, 0, 0)) {
		perror("userns_exec: becoming the namespace's root");
		return 1;
	}
	close(go[0]);
	close(go[1]);
	execvp(argv[3], argv + 3);
	perror("userns_exec: exec");
	return 127;
}
