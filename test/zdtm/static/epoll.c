// SPDX-License-Identifier: GPL-2.0
/*
 * epoll: targets of several types with their data cookies, level- and
 * edge-triggered, a oneshot that already fired (stays disarmed until
 * EPOLL_CTL_MOD), an epoll inside an epoll, and a target whose fd was
 * closed while a dup of it stays open (still registered, under its old
 * fd number).
 */
#include <errno.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "zdtm.h"

#define GONE 40 /* the closed target's fd number */

static int add(int ep, int fd, uint32_t events, uint64_t data)
{
	struct epoll_event ev = { .events = events, .data.u64 = data };

	return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

/* The cookies epoll_wait reports now, as a bit set of their low digits. */
static int ready(int ep)
{
	struct epoll_event ev[16];
	int n = epoll_wait(ep, ev, 16, 0), set = 0;

	for (int i = 0; i < n; i++)
		set |= 1 << (ev[i].data.u64 & 0xf);
	return n < 0 ? -1 : set;
}

int main(int argc, char **argv)
{
	uint64_t one = 1;
	int p[2], sk[2], ep, nest, shot, efd, tfd, gone, kept, r;
	struct epoll_event ev = { .events = EPOLLOUT | EPOLLONESHOT, .data.u64 = 0x4444 };

	test_init(argc, argv);
	ep = epoll_create1(0);
	nest = epoll_create1(EPOLL_CLOEXEC);
	shot = epoll_create1(0);
	efd = eventfd(1, 0);
	tfd = timerfd_create(CLOCK_MONOTONIC, 0);
	gone = eventfd(2, 0);
	if (ep < 0 || nest < 0 || shot < 0 || efd < 0 || tfd < 0 || gone < 0 || pipe(p) ||
	    socketpair(AF_UNIX, SOCK_STREAM, 0, sk) || write(p[1], "x", 1) != 1 ||
	    dup2(gone, GONE) != GONE || close(gone))
		return fail_errno("setup"), 1;
	if (add(ep, p[0], EPOLLIN, 0x1111) || add(ep, efd, EPOLLIN | EPOLLET, 0x2222) ||
	    add(ep, tfd, EPOLLIN, 0x3333) || add(ep, GONE, EPOLLIN, 0x5555) ||
	    add(nest, ep, EPOLLIN, 0x6666) || add(shot, sk[0], ev.events, ev.data.u64))
		return fail_errno("epoll_ctl"), 1;
	kept = dup(GONE);
	if (kept < 0 || close(GONE) || ready(shot) != 1 << 4)
		return fail_errno("oneshot"), 1;
	test_daemon();
	test_waitsig();

	if ((r = ready(nest)) != 1 << 6)
		return fail("nested epoll: ready set %#x", r), 1;
	if ((r = ready(ep)) != (1 << 1 | 1 << 2 | 1 << 5))
		return fail("first wait: ready set %#x, want pipe, eventfd, closed target", r), 1;
	if ((r = ready(ep)) != (1 << 1 | 1 << 5))
		return fail("second wait: %#x: edge-triggered eventfd reported again?", r), 1;
	if (write(efd, &one, sizeof(one)) != sizeof(one) || (r = ready(ep)) != (1 << 1 | 1 << 2 | 1 << 5))
		return fail("after a write: %#x, want the eventfd's edge too", r), 1;
	if (ready(shot) != 0)
		return fail("the fired oneshot reports again"), 1;
	if (epoll_ctl(shot, EPOLL_CTL_MOD, sk[0], &ev) || ready(shot) != 1 << 4)
		return fail("the oneshot did not re-arm"), 1;
	if (dup2(kept, GONE) != GONE || epoll_ctl(ep, EPOLL_CTL_DEL, GONE, NULL))
		return fail_errno("the closed target is not registered under fd %d", GONE), 1;
	if (epoll_ctl(ep, EPOLL_CTL_DEL, tfd, NULL) || epoll_ctl(ep, EPOLL_CTL_DEL, p[0], NULL))
		return fail_errno("EPOLL_CTL_DEL"), 1;
	if (ready(ep) != 0)
		return fail("targets left after DEL"), 1;
	pass();
	return 0;
}
