// SPDX-License-Identifier: MIT
/* posix_timer: holds POSIX timers 0 and 2 (timer_create; 1 is deleted) and sleeps. */
#include <signal.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

int main(void)
{
	struct sigevent sev = { .sigev_notify = SIGEV_NONE };
	struct itimerspec its = { { 5, 0 }, { 1000, 0 } };
	timer_t t[3];

	for (int i = 0; i < 3; i++)
		if (timer_create(i == 2 ? CLOCK_REALTIME : CLOCK_MONOTONIC, &sev, &t[i])) {
			perror("timer_create");
			return 1;
		}
	if (timer_delete(t[1]) || timer_settime(t[2], 0, &its, NULL)) {
		perror("timer_delete/settime");
		return 1;
	}
	for (;;)
		pause();
}
