// SPDX-License-Identifier: GPL-2.0
/*
 * A task holding nearly as many fds as its RLIMIT_NOFILE allows (1024,
 * soft and hard), most of them sockets: NCONN loopback TCP connections
 * (both ends its own, --tcp-established), every end a target of one epoll
 * with its own cookie, and unix socketpairs up to LIMIT - HEADROOM fds,
 * data queued both ways on each. The runner runs amber under the same
 * limit (zdtm_runner.TEST_AMBER_NOFILE), as a container runtime or a
 * machine whose hard limit is the task's would: the restore must fit in
 * the fds the task held plus a few. After the restore: the limit is the
 * task's again, every TCP end is reported by the epoll with its cookie and
 * reads its data, every socketpair end reads its data, and a connection
 * carries new data.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "zdtm.h"

#define LIMIT	 1024
#define HEADROOM 32  /* fds the task leaves free: the restore gets no more */
#define NCONN	 200 /* 400 TCP ends, 400 epoll targets */
#define COOKIE	 0xc0de000000000000ull

static int tcp[2 * NCONN];
static int usk[2 * LIMIT];
static int nusk;

/* The bytes fd @fd's peer queued for it: 16, from its number. */
static void msg_for(int fd, char *m)
{
	memset(m, 0, 16);
	snprintf(m, 16, "to fd %d", fd);
}

static int send_to(int from, int to)
{
	char m[16];

	msg_for(to, m);
	return write(from, m, sizeof(m)) == sizeof(m) ? 0 : -1;
}

static int check_read(int fd)
{
	char m[16], got[16];

	msg_for(fd, m);
	if (recv(fd, got, sizeof(got), MSG_WAITALL) != sizeof(got) || memcmp(m, got, sizeof(m)))
		return -1;
	return 0;
}

int main(int argc, char **argv)
{
	struct rlimit rl = { LIMIT, LIMIT };
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t l = sizeof(a);
	static struct epoll_event ev[2 * NCONN];
	static char seen[2 * NCONN];
	int lsk, ep, n, got = 0;

	test_init(argc, argv);
	if (setrlimit(RLIMIT_NOFILE, &rl))
		return fail_errno("setrlimit"), 1;
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	lsk = socket(AF_INET, SOCK_STREAM, 0);
	if (lsk < 0 || bind(lsk, (void *)&a, sizeof(a)) || listen(lsk, NCONN) ||
	    getsockname(lsk, (void *)&a, &l))
		return fail_errno("listener"), 1;
	for (int i = 0; i < NCONN; i++) {
		tcp[2 * i] = socket(AF_INET, SOCK_STREAM, 0);
		if (tcp[2 * i] < 0 || connect(tcp[2 * i], (void *)&a, sizeof(a)))
			return fail_errno("connect %d", i), 1;
		tcp[2 * i + 1] = accept(lsk, NULL, NULL);
		if (tcp[2 * i + 1] < 0)
			return fail_errno("accept %d", i), 1;
	}
	close(lsk);
	ep = epoll_create1(0);
	if (ep < 0)
		return fail_errno("epoll_create1"), 1;
	for (int i = 0; i < 2 * NCONN; i++) {
		struct epoll_event e = { .events = EPOLLIN, .data.u64 = COOKIE | (uint64_t)i };

		if (epoll_ctl(ep, EPOLL_CTL_ADD, tcp[i], &e))
			return fail_errno("EPOLL_CTL_ADD %d", tcp[i]), 1;
	}
	/* Socketpairs until the highest fd is LIMIT - HEADROOM - 1. */
	while (1) {
		int sv[2];

		if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
			return fail_errno("socketpair"), 1;
		usk[nusk++] = sv[0];
		usk[nusk++] = sv[1];
		if (sv[1] >= LIMIT - HEADROOM - 2)
			break;
	}
	for (int i = 0; i < 2 * NCONN; i += 2)
		if (send_to(tcp[i], tcp[i + 1]) || send_to(tcp[i + 1], tcp[i]))
			return fail_errno("TCP write"), 1;
	for (int i = 0; i < nusk; i += 2)
		if (send_to(usk[i], usk[i + 1]) || send_to(usk[i + 1], usk[i]))
			return fail_errno("unix write"), 1;
	test_msg("%d TCP ends, %d unix sockets, highest fd %d, limit %d\n", 2 * NCONN, nusk,
		 usk[nusk - 1], LIMIT);

	test_daemon();
	test_waitsig();

	if (getrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_cur != LIMIT || rl.rlim_max != LIMIT)
		return fail("RLIMIT_NOFILE is %llu/%llu, not %d", (unsigned long long)rl.rlim_cur,
			    (unsigned long long)rl.rlim_max, LIMIT), 1;
	/* The queued data makes every TCP end ready, each reported once with its cookie. */
	while (got < 2 * NCONN) {
		n = epoll_wait(ep, ev, 2 * NCONN, 5000);
		if (n <= 0)
			return fail("epoll reported %d of %d TCP ends", got, 2 * NCONN), 1;
		for (int i = 0; i < n; i++) {
			uint64_t c = ev[i].data.u64;

			if ((c & ~0xffffull) != COOKIE || (c & 0xffff) >= 2 * NCONN ||
			    seen[c & 0xffff]++)
				return fail("epoll cookie %#llx", (unsigned long long)c), 1;
		}
		got += n;
		for (int i = 0; i < 2 * NCONN; i++) /* level-triggered: read them out */
			if (seen[i] == 1 && (seen[i] = 2, check_read(tcp[i])))
				return fail("TCP fd %d: queued data", tcp[i]), 1;
	}
	for (int i = 0; i < nusk; i++)
		if (check_read(usk[i]))
			return fail("unix fd %d: queued data", usk[i]), 1;
	if (send_to(tcp[0], tcp[1]) || check_read(tcp[1]) || send_to(tcp[1], tcp[0]) ||
	    check_read(tcp[0]))
		return fail("a connection carries no new data"), 1;
	pass();
	return 0;
}
