// SPDX-License-Identifier: MIT
/*
 * fd_farm NTASKS NFDS PIDFILE: a tree of NTASKS processes (the root and
 * NTASKS-1 children), each holding about NFDS fds of mixed types: regular
 * files, pipes, eventfds, timerfds, unix socketpairs and epolls watching
 * some of them. Writes its pid to PIDFILE once every task holds its fds,
 * then waits for signals. For bench/objects/run.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

static void die(const char *what)
{
	perror(what);
	exit(1);
}

/* One round adds 9 fds: file, pipe (2), eventfd, timerfd, socketpair (2), epoll, file. */
static void fill(int nfds, const char *file)
{
	struct itimerspec its = { .it_value.tv_sec = 3600, .it_interval.tv_sec = 3600 };
	int have = 3;

	while (have + 9 <= nfds) {
		int p[2], sk[2], efd, tfd, ep;
		struct epoll_event ev = { .events = EPOLLIN };

		if (open(file, O_RDONLY) < 0 || pipe(p) || socketpair(AF_UNIX, SOCK_STREAM, 0, sk))
			die("open/pipe/socketpair");
		efd = eventfd(have, EFD_NONBLOCK);
		tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
		ep = epoll_create1(0);
		if (efd < 0 || tfd < 0 || ep < 0 || timerfd_settime(tfd, 0, &its, NULL))
			die("eventfd/timerfd/epoll");
		ev.data.fd = efd;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev))
			die("epoll_ctl");
		ev.data.fd = p[0];
		if (epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev))
			die("epoll_ctl");
		if (write(p[1], "x", 1) != 1 || open(file, O_RDONLY) < 0)
			die("write/open");
		have += 9;
	}
}

int main(int argc, char **argv)
{
	struct rlimit rl;
	int ntasks, nfds, ready[2];
	FILE *f;

	if (argc != 4)
		return 2;
	ntasks = atoi(argv[1]);
	nfds = atoi(argv[2]);
	/* Root here lacks CAP_SYS_RESOURCE: raise the soft limit to the hard one. */
	if (getrlimit(RLIMIT_NOFILE, &rl))
		die("getrlimit");
	rl.rlim_cur = rl.rlim_max;
	if (rl.rlim_cur < (rlim_t)nfds + 16) {
		fprintf(stderr, "fd_farm: %d fds need RLIMIT_NOFILE above %lu\n", nfds,
			(unsigned long)rl.rlim_max);
		return 1;
	}
	if (setrlimit(RLIMIT_NOFILE, &rl) || pipe(ready))
		die("setrlimit/pipe");
	for (int i = 1; i < ntasks; i++) {
		pid_t pid = fork();

		if (pid < 0)
			die("fork");
		if (pid == 0) {
			close(ready[0]);
			fill(nfds, argv[0]);
			if (write(ready[1], "r", 1) != 1)
				die("ready");
			close(ready[1]);
			for (;;)
				pause();
		}
	}
	close(ready[1]);
	for (int i = 1; i < ntasks; i++) {
		char c;

		if (read(ready[0], &c, 1) != 1)
			die("a child failed");
	}
	close(ready[0]);
	fill(nfds, argv[0]);
	f = fopen(argv[3], "w");
	if (!f || fprintf(f, "%d\n", getpid()) < 0 || fclose(f))
		die("pidfile");
	for (;;)
		pause();
}
