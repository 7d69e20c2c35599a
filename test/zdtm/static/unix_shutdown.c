// SPDX-License-Identifier: GPL-2.0
/*
 * Shutdown state: a stream pair shut for writing on one side with data
 * still queued, and a seqpacket pair shut for reading on one side.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "zdtm.h"

int main(int argc, char **argv)
{
	int st[2], sp[2];
	char buf[16] = {};

	test_init(argc, argv);
	signal(SIGPIPE, SIG_IGN);
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, st) || socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sp))
		return fail_errno("socketpair"), 1;
	if (send(st[0], "last", 4, 0) != 4 || shutdown(st[0], SHUT_WR) ||
	    send(sp[0], "kept", 4, 0) != 4 || shutdown(sp[1], SHUT_RD))
		return fail_errno("send/shutdown"), 1;
	test_daemon();
	test_waitsig();

	if (recv(st[1], buf, sizeof(buf), 0) != 4 || memcmp(buf, "last", 4))
		return fail("data before the shutdown lost"), 1;
	if (recv(st[1], buf, sizeof(buf), MSG_DONTWAIT) != 0)
		return fail("no end of stream after the data"), 1;
	if (send(st[0], "x", 1, MSG_DONTWAIT) != -1 || errno != EPIPE)
		return fail("the shut side can write again"), 1;
	if (send(st[1], "y", 1, 0) != 1 || recv(st[0], buf, 1, 0) != 1 || buf[0] != 'y')
		return fail("the open direction is broken"), 1;
	if (send(sp[0], "z", 1, MSG_DONTWAIT) != -1 || errno != EPIPE)
		return fail("a socket shut for reading gets data again"), 1;
	if (recv(sp[1], buf, sizeof(buf), MSG_DONTWAIT) != 4 || memcmp(buf, "kept", 4))
		return fail("seqpacket data queued before the shutdown lost"), 1;
	if (send(sp[1], "w", 1, 0) != 1 || recv(sp[0], buf, 1, 0) != 1)
		return fail("seqpacket open direction broken"), 1;
	pass();
	return 0;
}
