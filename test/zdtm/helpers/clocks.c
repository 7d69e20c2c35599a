// SPDX-License-Identifier: MIT
/*
 * clocks TICKS MS: prints "pid PID child PID", then "tick I MONOTONIC
 * BOOTTIME" (nanoseconds, as
 * clock_gettime gives them here) every MS milliseconds, TICKS times, then
 * "done"; a child sleeps meanwhile (a tree of two, to see that both are
 * in the restored time namespace). Run in a time namespace of its own,
 * the test checks the clocks from outside: on from where they were,
 * never back (test_ns.py).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv)
{
	int ticks, ms;
	pid_t child;

	if (argc != 3)
		return 100;
	ticks = atoi(argv[1]);
	ms = atoi(argv[2]);
	setvbuf(stdout, NULL, _IOLBF, 0);
	child = fork();
	if (child < 0)
		return 101;
	if (!child) {
		pause();
		_exit(0);
	}
	printf("pid %d child %d\n", getpid(), child);
	for (int i = 1; i <= ticks; i++) {
		printf("tick %d %lld %lld\n", i, now_ns(CLOCK_MONOTONIC), now_ns(CLOCK_BOOTTIME));
		usleep(ms * 1000);
	}
	kill(child, SIGKILL);
	printf("done\n");
	return 0;
}
