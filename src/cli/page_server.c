// SPDX-License-Identifier: MIT
/* amber page-server --port P: receive a dump's pages, or serve them. */
#include <stdio.h>

#include "cli/cli.h"

/* The port line is what scripts read to learn an ephemeral port. */
static void announce(void *arg, const char *address, int port)
{
	const struct amber_page_server_opts *o = arg;

	if (!o->ps.token_file && !o->ps.tls)
		fprintf(stderr, "amber page-server: WARNING: unauthenticated (no --token-file "
				"or TLS): anyone who can reach port %d can write pages into %s\n",
			port, o->images_dir);
	printf("amber page-server listening on %s:%d (%s)\n", address ?: "*", port,
	       o->lazy_pages ? "lazy: serving the dump" : "receiving a dump");
	fflush(stdout);
}

#define OPT_PS_TIMEOUT 0x200
#define OPT_PS_MAX_CONN 0x201

int cli_page_server(int argc, char **argv, struct cli_common *co)
{
	static const struct option lo[] = {
		{ "images-dir", required_argument, 0, 'D' },
		{ "address", required_argument, 0, OPT_ADDRESS },
		{ "port", required_argument, 0, OPT_PORT },
		{ "lazy-pages", no_argument, 0, OPT_LAZY },
		{ "prev-images-dir", required_argument, 0, 'P' },
		{ "timeout", required_argument, 0, OPT_PS_TIMEOUT },
		{ "max-connections", required_argument, 0, OPT_PS_MAX_CONN },
		CLI_SEC_LONG_OPTS,
		{ 0 },
	};
	AMBER_OPTS(amber_page_server_opts, o, .images_dir = ".", .ps.port = -1);
	int c;

	while ((c = getopt_long(argc, argv, "D:v::o:", lo, NULL)) != -1) {
		if (cli_common_opt(c, co, argc, argv) || cli_endpoint_opt(c, &o.ps))
			continue;
		switch (c) {
		case 'D':
			o.images_dir = optarg;
			break;
		case OPT_LAZY:
			o.lazy_pages = true;
			break;
		case 'P':
			o.prev_images_dir = optarg;
			break;
		case OPT_PS_TIMEOUT:
			if (!cli_int_arg(optarg, 1, 86400, &o.timeout))
				return cli_usage("page-server", "--timeout wants 1..86400 seconds");
			break;
		case OPT_PS_MAX_CONN:
			if (!cli_int_arg(optarg, 1, 1024, &o.max_connections))
				return cli_usage("page-server", "--max-connections wants 1..1024");
			break;
		default:
			return cli_usage("page-server", NULL);
		}
	}
	if (o.ps.port < 0)
		return cli_usage("page-server", "--port P (0..65535) is required");
	if (o.lazy_pages && o.prev_images_dir)
		return cli_usage("page-server", "--prev-images-dir is for receiving an "
						"incremental dump, not with --lazy-pages");
	/* Giving a certificate is what turns TLS on for the server. */
	if (o.ps.tls_cert || o.ps.tls_key)
		o.ps.tls = true;
	if (o.ps.tls && (!o.ps.tls_cert || !o.ps.tls_key))
		return cli_usage("page-server", "TLS needs --tls-cert and --tls-key");
	o.listening = announce;
	o.listening_arg = &o;
	if (!cli_log_open(co))
		return CLI_EXIT_FAIL;
	return cli_result("page-server", amber_page_server(&o));
}
