// SPDX-License-Identifier: MIT
/* amber dedup -D DIR: --auto-dedup after the fact, down the chain. */
#include "cli/cli.h"

int cli_dedup(int argc, char **argv, struct cli_common *co)
{
	static const struct option lo[] = { { "images-dir", required_argument, 0, 'D' }, { 0 } };
	AMBER_OPTS(amber_dedup_opts, o);
	int c;

	while ((c = getopt_long(argc, argv, "D:v::o:", lo, NULL)) != -1) {
		if (cli_common_opt(c, co, argc, argv))
			continue;
		if (c != 'D')
			return cli_usage("dedup", NULL);
		o.images_dir = optarg;
	}
	if (!o.images_dir)
		return cli_usage("dedup", "-D DIR is required");
	if (!cli_log_open(co))
		return CLI_EXIT_FAIL;
	return cli_result("dedup", amber_dedup(&o));
}
