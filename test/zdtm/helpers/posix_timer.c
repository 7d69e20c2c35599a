// SPDX-License-Identifier: MIT
/* posix_timer: holds one POSIX timer (timer_create) and sleeps. */
#include <signal.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

int main(void)
{
	struct sigevent sev = { .sigev_notify = SIGEV_NONE };
	timer_t t;

	if (timer_create(CLOCK_MONOTONIC, &sev, &t)) {
		perror("timer_create");
		return 1;
	}
	for (;;)
		pause();
}
