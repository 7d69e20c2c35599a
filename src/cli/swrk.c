// SPDX-License-Identifier: MIT
/* amber swrk FD and amber service: CRIU's RPC (runc, libcriu, its service). */
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "cli/cli.h"
#include "rpc/rpc.h"

int cli_swrk(int argc, char **argv, struct cli_common *co)
{
	char *end;
	long fd;
	int type;
	socklen_t len = sizeof(type);

	if (argc != 2)
		return cli_usage("swrk", "usage: amber swrk FD");
	fd = strtol(argv[1], &end, 10);
	if (!*argv[1] || *end || fd < 0 || fd > 1 << 20)
		return cli_usage("swrk", "FD must be a file descriptor number");
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) || type != SOCK_SEQPACKET)
		return cli_usage("swrk", "fd %ld is not a SOCK_SEQPACKET socket", fd);
	if (amber_log_open(NULL, AMBER_LOG_WARN, 0))
		return CLI_EXIT_FAIL;
	return rpc_serve(fd, true) ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}

static void say_listening(const char *address)
{
	printf("amber service: listening on %s\n", address);
	fflush(stdout);
}

static const struct option service_long_opts[] = {
	{ "address", required_argument, 0, OPT_ADDRESS },
	{ 0 },
};

int cli_service(int argc, char **argv, struct cli_common *co)
{
	const char *address = NULL;
	int c;

	while ((c = getopt_long(argc, argv, "v::o:", service_long_opts, NULL)) != -1) {
		if (cli_common_opt(c, co, argc, argv))
			continue;
		if (c != OPT_ADDRESS)
			return cli_usage("service", NULL);
		address = optarg;
	}
	if (!address || optind != argc)
		return cli_usage("service", "--address PATH (a unix socket) is required");
	if (!cli_log_open(co))
		return CLI_EXIT_FAIL;
	return cli_result("service", rpc_service(address, say_listening));
}
