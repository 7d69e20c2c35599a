// SPDX-License-Identifier: MIT
/* amber swrk FD: answer CRIU's RPC on an inherited socket (runc, libcriu). */
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
	return rpc_serve(fd) ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}
