// SPDX-License-Identifier: GPL-2.0
/* A task that does nothing but sleep in nanosleep() until SIGTERM. */
#include <time.h>
#include <unistd.h>

#include "zdtm.h"

int main(int argc, char **argv)
{
	struct timespec ts = { .tv_sec = 3600 };
	pid_t pid, sid;

	test_init(argc, argv);
	pid = getpid();
	sid = getsid(0);
	test_daemon();
	while (!test_stop)
		nanosleep(&ts, NULL); /* EINTR on SIGTERM */

	if (getpid() != pid || getsid(0) != sid)
		fail("pid/sid changed: %d/%d -> %d/%d", pid, sid, getpid(),
		     getsid(0));
	else
		pass();
	return 0;
}
