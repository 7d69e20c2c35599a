// SPDX-License-Identifier: GPL-2.0
/*
 * An epoll with 200 targets, so its fdinfo (one line per target) is far
 * bigger than a page: after the restore every target is registered with
 * its cookie, and exactly the ready half is reported.
 */
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "zdtm.h"

#define NR 200

static uint64_t cookie(int i)
{
	return 0x5a5a000000000000ULL | ((uint64_t)i * 7 + 1);
}

int main(int argc, char **argv)
{
	struct epoll_event ev[NR + 1];
	int ep, efd[NR], n;
	char seen[NR] = { 0 };

	test_init(argc, argv);
	ep = epoll_create1(0);
	if (ep < 0)
		return fail_errno("epoll_create1"), 1;
	for (int i = 0; i < NR; i++) {
		struct epoll_event e = { .events = EPOLLIN, .data.u64 = cookie(i) };

		efd[i] = eventfd(i & 1, 0); /* the odd ones are readable */
		if (efd[i] < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, efd[i], &e))
			return fail_errno("target %d", i), 1;
	}
	test_daemon();
	test_waitsig();

	n = epoll_wait(ep, ev, NR + 1, 0);
	if (n != NR / 2)
		return fail("%d targets ready, want %d", n, NR / 2), 1;
	for (int j = 0; j < n; j++) {
		uint64_t c = ev[j].data.u64;
		int i = (int)(((c & 0xffffffffULL) - 1) / 7);

		if (i < 0 || i >= NR || cookie(i) != c || !(i & 1) || seen[i]++ ||
		    ev[j].events != EPOLLIN)
			return fail("unexpected event %#llx cookie %#llx",
				    (unsigned long long)ev[j].events, (unsigned long long)c), 1;
	}
	for (int i = 0; i < NR; i++)
		if (epoll_ctl(ep, EPOLL_CTL_DEL, efd[i], NULL))
			return fail_errno("target %d is not registered", i), 1;
	pass();
	return 0;
}
