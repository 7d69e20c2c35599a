// SPDX-License-Identifier: MIT
/* amber service --address PATH: CRIU's RPC on a listening unix socket. */
#define LOG_PREFIX "rpc: "
#include <errno.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/log.h"
#include "rpc/rpc.h"

/*
 * Only amber's own user (or root) may drive it: a request dumps and
 * restores processes with amber's privileges. The socket file is 0600
 * too, but its directory's owner could swap it: the peer's credentials
 * decide.
 */
static bool caller_allowed(int sk)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);

	if (getsockopt(sk, SOL_SOCKET, SO_PEERCRED, &cr, &len))
		return false;
	if (cr.uid == 0 || cr.uid == geteuid())
		return true;
	pr_warn("refused a caller: pid %d uid %u is neither root nor uid %u\n", cr.pid, cr.uid,
		geteuid());
	return false;
}

static void reap(void)
{
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}

int rpc_service(const char *address, void (*listening)(const char *address))
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int lsk, ret;

	if (!address || strlen(address) >= sizeof(sa.sun_path)) {
		pr_err("service: the socket path must be 1..%zu bytes\n", sizeof(sa.sun_path) - 1);
		return -EINVAL;
	}
	strcpy(sa.sun_path, address);
	lsk = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (lsk < 0)
		return -errno;
	unlink(address);
	if (bind(lsk, (struct sockaddr *)&sa, sizeof(sa)) || chmod(address, 0600) ||
	    listen(lsk, 16)) {
		ret = -errno;
		pr_perror("service: can't listen on %s", address);
		close(lsk);
		return ret;
	}
	if (listening)
		listening(address);
	for (;;) {
		int sk = accept4(lsk, NULL, NULL, SOCK_CLOEXEC);
		pid_t pid;

		reap();
		if (sk < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			ret = -errno;
			pr_perror("service: accept");
			break;
		}
		if (!caller_allowed(sk)) {
			close(sk);
			continue;
		}
		/* One process per caller: a dump in one never blocks another. */
		pid = fork();
		if (pid == 0) {
			close(lsk);
			_exit(rpc_serve(sk, false) ? 1 : 0);
		}
		if (pid < 0)
			pr_perror("service: fork");
		close(sk);
	}
	close(lsk);
	return ret;
}
