// SPDX-License-Identifier: MIT
/*
 * amber net-unlock -D DIR: remove the network lock the dump in DIR took,
 * when amber was killed before it could (a restore of DIR removes it too).
 */
#include "cli/cli.h"

int cli_net_unlock(int argc, char **argv, struct cli_common *co)
{
	static const struct option lo[] = { { "images-dir", required_argument, 0, 'D' }, { 0 } };
	AMBER_OPTS(amber_net_unlock_opts, o);
	int c;

	while ((c = getopt_long(argc, argv, "D:v::o:", lo, NULL)) != -1) {
		if (cli_common_opt(c, co, argc, argv))
			continue;
		if (c != 'D')
			return cli_usage("net-unlock", NULL);
		o.images_dir = optarg;
	}
	if (!o.images_dir)
		return cli_usage("net-unlock", "-D DIR is required");
	if (!cli_log_open(co))
		return CLI_EXIT_FAIL;
	return cli_result("net-unlock", amber_net_unlock(&o));
}
