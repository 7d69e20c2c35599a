// SPDX-License-Identifier: MIT
/* amber dump and amber pre-dump: checkpoint a tree (or its memory). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

static const struct option dump_long_opts[] = {
	{ "tree", required_argument, 0, 't' },
	{ "images-dir", required_argument, 0, 'D' },
	{ "leave-running", no_argument, 0, 'R' },
	CLI_TREE_LONG_OPTS,
	{ "skip-in-flight", no_argument, 0, OPT_SKIP_IN_FLIGHT },
	{ "track-mem", optional_argument, 0, 'T' },
	{ "prev-images-dir", required_argument, 0, 'P' },
	{ "cleanup", no_argument, 0, 'C' },
	{ "auto-dedup", no_argument, 0, 'A' },
	{ "pre-dump-mode", required_argument, 0, 'M' },
	{ "page-server", no_argument, 0, OPT_PAGE_SERVER },
	{ "lazy-pages", no_argument, 0, OPT_LAZY },
	{ "status-fd", required_argument, 0, OPT_STATUS_FD },
	{ "address", required_argument, 0, OPT_ADDRESS },
	{ "port", required_argument, 0, OPT_PORT },
	{ "pkram", required_argument, 0, 'K' },
	CLI_UNPRIV_LONG_OPT,
	CLI_SEC_LONG_OPTS,
	CLI_CONTAINER_LONG_OPTS,
	{ 0 },
};

/* One option of dump or pre-dump into @o; false if @c is not one. */
static bool dump_opt(int c, struct amber_dump_opts *o)
{
	switch (c) {
	case 't':
		o->pid = atoi(optarg);
		return true;
	case 'D':
		o->images_dir = optarg;
		return true;
	case 'R':
		o->leave_running = true;
		return true;
	case 'T':
		o->track_mem = optarg ? optarg : "auto";
		return true;
	case 'P':
		o->prev_images_dir = optarg;
		return true;
	case 'C':
		o->cleanup = true;
		return true;
	case 'K':
		o->pkram = optarg;
		return true;
	case 'A':
		o->auto_dedup = true;
		return true;
	case OPT_PAGE_SERVER:
		o->page_server = true;
		return true;
	case OPT_LAZY:
		o->lazy_pages = true;
		return true;
	case OPT_STATUS_FD:
		o->status_fd = atoi(optarg);
		return true;
	case OPT_SKIP_IN_FLIGHT:
		o->skip_in_flight = true;
		return true;
	}
	return cli_endpoint_opt(c, &o->ps);
}

static int check_dump_opts(const char *verb, const struct amber_dump_opts *o, bool pre)
{
	if (o->pid <= 0 || (!o->images_dir && !o->cleanup))
		return cli_usage(verb, "-t PID and -D DIR are required");
	if (o->auto_dedup && o->page_server)
		return cli_usage(verb, "--auto-dedup works where the pages are: run "
				       "`amber dedup` on the page server's side");
	if (o->cleanup && !pre)
		return cli_usage(verb, "--cleanup belongs to pre-dump");
	if (o->pkram && !pre)
		return cli_usage(verb, "--pkram belongs to pre-dump (amber kexec dumps into the "
				       "store)");
	if (o->pkram && (o->page_server || o->cleanup))
		return cli_usage(verb, "--pkram takes no --page-server or --cleanup");
	if (o->page_server && (!o->ps.address || o->ps.port <= 0))
		return cli_usage(verb, "--page-server needs --address A and --port P");
	if (o->lazy_pages && (pre || o->page_server || o->leave_running || o->track_mem ||
			      o->prev_images_dir))
		return cli_usage(verb, "--lazy-pages belongs to dump, without --page-server, "
				       "--leave-running, --track-mem or --prev-images-dir");
	if (o->lazy_pages && o->ps.port < 0)
		return cli_usage(verb, "--lazy-pages needs --port P (0: any free port)");
	return 0;
}

static int run(int argc, char **argv, struct cli_common *co, bool pre)
{
	AMBER_OPTS(amber_dump_opts, o, .ps.port = -1);
	const char *verb = pre ? "pre-dump" : "dump";
	const struct cli_tree tree = CLI_TREE_OF(o);
	struct cli_container ct = { 0 };
	int c, ret;

	while ((c = getopt_long(argc, argv, "t:D:Rjlv::o:", dump_long_opts, NULL)) != -1) {
		if (cli_common_opt(c, co, argc, argv) || dump_opt(c, &o))
			continue;
		/* pre-dump takes no lock, and accepts --network-lock as CRIU does */
		ret = cli_tree_opt(verb, c, &tree);
		if (!ret)
			ret = cli_container_opt(verb, c, &ct);
		if (ret < 0)
			return CLI_EXIT_USAGE;
		if (ret)
			continue;
		if (c != 'M')
			return cli_usage(verb, NULL);
		if (!pre)
			return cli_usage(verb, "--pre-dump-mode belongs to pre-dump");
		if (!strcmp(optarg, "read"))
			o.pre_dump_mode = AMBER_PRE_DUMP_READ;
		else if (strcmp(optarg, "splice"))
			return cli_usage(verb, "--pre-dump-mode is read or splice");
	}
	o.ext_mounts = ct.ext;
	o.nr_ext_mounts = ct.nr_ext;
	o.manage_cgroups = ct.cgroups;
	o.ext_netns_key = ct.ext_netns_key;
	o.ext_netns_ino = ct.ext_netns_ino;
	o.freeze_cgroup = ct.freeze_cgroup;
	ret = check_dump_opts(verb, &o, pre);
	if (!ret && !cli_log_open(co))
		ret = CLI_EXIT_FAIL;
	if (ret) {
		free(ct.ext);
		free(ct.veths);
		return ret;
	}
	ret = cli_result(verb, pre ? amber_pre_dump(&o) : amber_dump(&o));
	free(ct.ext);
	free(ct.veths);
	return ret;
}

int cli_dump(int argc, char **argv, struct cli_common *co)
{
	return run(argc, argv, co, false);
}

int cli_pre_dump(int argc, char **argv, struct cli_common *co)
{
	return run(argc, argv, co, true);
}
