// SPDX-License-Identifier: MIT
/*
 * amber restore -D DIR | --pkram NAME [-d [--pidfile FILE]]: bring a tree
 * back (--pkram NAME: from the store amber kexec preserved for this
 * kernel). Without -d amber waits for
 * the root and exits with its status; its own failure is 125 then, so a
 * restored program's 1 or 2 is never taken for amber's (see cli.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

#include "cli/cli.h"

/* --inherit-fd fd[N]:KEY (CRIU's form) appended to @o's list. */
static bool add_inherit_fd(struct amber_restore_opts *o, const char *arg)
{
	struct amber_inherit_fd *n;
	int fd, len = 0;

	if (sscanf(arg, "fd[%d]:%n", &fd, &len) != 1 || !len || fd < 0 || !arg[len])
		return false;
	n = realloc((void *)o->inherit_fds, (o->nr_inherit_fds + 1) * sizeof(*n));
	if (!n)
		return false;
	n[o->nr_inherit_fds].fd = fd;
	n[o->nr_inherit_fds].key = arg + len;
	o->inherit_fds = n;
	o->nr_inherit_fds++;
	return true;
}

static int write_pidfile(const char *path, pid_t pid)
{
	FILE *f = fopen(path, "we");

	if (!f)
		return -1;
	fprintf(f, "%d\n", pid);
	return fclose(f);
}

int cli_restore(int argc, char **argv, struct cli_common *co)
{
	static const struct option lo[] = {
		{ "images-dir", required_argument, 0, 'D' },
		{ "restore-detached", no_argument, 0, 'd' },
		CLI_TREE_LONG_OPTS,
		{ "tcp-close", no_argument, 0, OPT_TCP_CLOSE },
		{ "lazy-pages", no_argument, 0, 'L' },
		{ "lazy-socket", required_argument, 0, 'S' },
		{ "pkram", required_argument, 0, 'K' },
		{ "pkram-copy", no_argument, 0, OPT_PKRAM_COPY },
		{ "pidfile", required_argument, 0, OPT_PIDFILE },
		{ "inherit-fd", required_argument, 0, OPT_INHERIT_FD },
		CLI_CONTAINER_LONG_OPTS,
		CLI_UNPRIV_LONG_OPT,
		{ 0 },
	};
	AMBER_OPTS(amber_restore_opts, o);
	const struct cli_tree tree = CLI_TREE_OF(o);
	const char *pidfile = NULL;
	struct cli_container ct = { 0 };
	int c, ret, status = 0;
	pid_t root = 0;

	while ((c = getopt_long(argc, argv, "D:djlv::o:", lo, NULL)) != -1) {
		if (cli_common_opt(c, co, argc, argv))
			continue;
		ret = cli_tree_opt("restore", c, &tree);
		if (!ret)
			ret = cli_container_opt("restore", c, &ct);
		if (ret < 0)
			return CLI_EXIT_USAGE;
		if (ret)
			continue;
		switch (c) {
		case 'D':
			o.images_dir = optarg;
			break;
		case 'd':
			o.detach = true;
			break;
		case OPT_TCP_CLOSE:
			o.tcp_close = true;
			break;
		case 'L':
			o.lazy_pages = true;
			break;
		case 'S':
			o.lazy_socket = optarg;
			break;
		case 'K':
			o.pkram = optarg;
			break;
		case OPT_PKRAM_COPY:
			o.pkram_copy = true;
			break;
		case OPT_PIDFILE:
			pidfile = optarg;
			break;
		case OPT_INHERIT_FD:
			if (!add_inherit_fd(&o, optarg))
				return cli_usage("restore", "--inherit-fd is fd[N]:KEY");
			break;
		default:
			return cli_usage("restore", NULL);
		}
	}
	if (!o.images_dir == !o.pkram)
		return cli_usage("restore", "-D DIR or --pkram NAME is required (one of them)");
	if (o.pkram_copy && !o.pkram)
		return cli_usage("restore", "--pkram-copy needs --pkram NAME");
	o.root = ct.root;
	o.ext_mounts = ct.ext;
	o.nr_ext_mounts = ct.nr_ext;
	o.veths = ct.veths;
	o.nr_veths = ct.nr_veths;
	o.manage_cgroups = ct.cgroups;
	o.cgroup_root = ct.cgroup_root;
	if (pidfile && !o.detach)
		return cli_usage("restore", "--pidfile needs -d");
	if (!cli_log_open(co))
		return o.detach ? CLI_EXIT_FAIL : CLI_EXIT_RESTORE_FAIL;
	ret = amber_restore(&o, &root, &status);
	free(ct.ext);
	free((void *)o.inherit_fds);
	free(ct.veths);
	if (ret)
		return o.detach ? CLI_EXIT_FAIL : CLI_EXIT_RESTORE_FAIL;
	/* The root's pid as seen here: with a pid namespace of its own, not the saved one */
	if (pidfile && write_pidfile(pidfile, root)) {
		fprintf(stderr, "can't write the root's pid %d to %s\n", root, pidfile);
		return CLI_EXIT_FAIL;
	}
	if (o.detach)
		return CLI_EXIT_OK;
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 128 + WTERMSIG(status);
}
