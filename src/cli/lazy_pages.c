// SPDX-License-Identifier: MIT
/* amber lazy-pages -D DIR: serve the memory of a lazy restore. */
#include "cli/cli.h"

int cli_lazy_pages(int argc, char **argv, struct cli_common *co)
{
	static const struct option lo[] = {
		{ "images-dir", required_argument, 0, 'D' },
		{ "socket", required_argument, 0, 'S' },
		{ "resume", no_argument, 0, 'r' },
		{ "no-prefetch", no_argument, 0, 'n' },
		{ "page-server", no_argument, 0, OPT_PAGE_SERVER },
		{ "address", required_argument, 0, OPT_ADDRESS },
		{ "port", required_argument, 0, OPT_PORT },
		{ "pkram", required_argument, 0, 'K' },
		CLI_SEC_LONG_OPTS,
		{ 0 },
	};
	AMBER_OPTS(amber_lazy_opts, o, .ps.port = -1);
	int c;

	while ((c = getopt_long(argc, argv, "D:v::o:", lo, NULL)) != -1) {
		if (cli_common_opt(c, co, argc, argv) || cli_endpoint_opt(c, &o.ps))
			continue;
		switch (c) {
		case 'D':
			o.images_dir = optarg;
			break;
		case 'S':
			o.socket = optarg;
			break;
		case 'r':
			o.resume = true;
			break;
		case 'n':
			o.no_prefetch = true;
			break;
		case 'K':
			o.pkram = optarg;
			break;
		case OPT_PAGE_SERVER:
			o.page_server = true;
			break;
		default:
			return cli_usage("lazy-pages", NULL);
		}
	}
	if (!o.images_dir == !o.pkram)
		return cli_usage("lazy-pages", "-D DIR or --pkram NAME is required (one of them)");
	if (o.pkram && o.page_server)
		return cli_usage("lazy-pages", "--pkram serves a local store: no --page-server");
	if (o.page_server && (!o.ps.address || o.ps.port <= 0))
		return cli_usage("lazy-pages", "--page-server needs --address A and --port P");
	if (!cli_log_open(co))
		return CLI_EXIT_FAIL;
	return cli_result("lazy-pages", amber_lazy_pages(&o));
}
