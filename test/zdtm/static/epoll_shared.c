// SPDX-License-Identifier: GPL-2.0
/*
 * An epoll shared by a parent and its child, with a target only the
 * child holds (its pipe, with data): after the restore the parent sees
 * the child's target, and once the child is gone the target leaves the
 * epoll, so no other reference to the child's pipe survived the restore.
 */
#include <signal.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/wait.h>
#include <unistd.h>

#include "zdtm.h"

static int ready(int ep, uint64_t *data)
{
	struct epoll_event ev[4];
	int n = epoll_wait(ep, ev, 4, 0);

	if (n == 1)
		*data = ev[0].data.u64;
	return n;
}

int main(int argc, char **argv)
{
	int ep, sync[2], st;
	uint64_t data = 0;
	char c;
	pid_t kid;

	test_init(argc, argv);
	ep = epoll_create1(0);
	if (ep < 0 || pipe(sync))
		return fail_errno("setup"), 1;
	kid = fork();
	if (kid < 0)
		return fail_errno("fork"), 1;
	if (kid == 0) {
		struct epoll_event ev = { .events = EPOLLIN, .data.u64 = 0x77 };
		int p[2];

		close(sync[0]);
		if (pipe(p) || write(p[1], "x", 1) != 1 ||
		    epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev) || write(sync[1], "r", 1) != 1)
			_exit(1);
		close(sync[1]);
		for (;;)
			pause();
	}
	close(sync[1]);
	/* the byte, then EOF: the child's fds are final once it closed sync[1] */
	if (read(sync[0], &c, 1) != 1 || read(sync[0], &c, 1) != 0)
		return fail("the child did not set up"), 1;
	close(sync[0]);
	test_daemon();
	test_waitsig();

	if (ready(ep, &data) != 1 || data != 0x77)
		return fail("the child's target is not in the shared epoll (%#llx)",
			    (unsigned long long)data), 1;
	kill(kid, SIGKILL);
	if (waitpid(kid, &st, 0) != kid)
		return fail_errno("waitpid"), 1;
	if (ready(ep, &data) != 0)
		return fail("the child's pipe outlived the child: a reference leaked"), 1;
	pass();
	return 0;
}
