// SPDX-License-Identifier: GPL-2.0
/* Interval timers: ITIMER_REAL, ITIMER_VIRTUAL and ITIMER_PROF stay armed. */
#include <signal.h>
#include <sys/time.h>

#include "zdtm.h"

static const struct {
	int which;
	const char *name;
	long value, interval; /* seconds */
} timers[] = {
	{ ITIMER_REAL, "ITIMER_REAL", 3000, 500 },
	{ ITIMER_VIRTUAL, "ITIMER_VIRTUAL", 2000, 300 },
	{ ITIMER_PROF, "ITIMER_PROF", 1000, 7 },
};

int main(int argc, char **argv)
{
	const struct timeval tick = { 0, 10000 };
	struct itimerval it, before[3];
	int i;

	test_init(argc, argv);
	for (i = 0; i < 3; i++) {
		it.it_value = (struct timeval){ timers[i].value, 0 };
		it.it_interval = (struct timeval){ timers[i].interval, 0 };
		if (setitimer(timers[i].which, &it, NULL) ||
		    getitimer(timers[i].which, &before[i]))
			return fail_errno("setitimer"), 1;
	}
	test_daemon();
	test_waitsig();

	for (i = 0; i < 3; i++) {
		if (getitimer(timers[i].which, &it))
			return fail_errno("getitimer"), 1;
		if (it.it_interval.tv_sec != timers[i].interval ||
		    it.it_interval.tv_usec)
			return fail("%s: interval %ld.%06ld, want %ld", timers[i].name,
				    it.it_interval.tv_sec, it.it_interval.tv_usec,
				    timers[i].interval), 1;
		if (!timerisset(&it.it_value))
			return fail("%s is disarmed", timers[i].name), 1;
		/*
		 * Timers only count down; the real one by about the elapsed
		 * time. The kernel arms a CPU timer one tick (1/HZ, at most
		 * 10 ms) later than asked so that it never fires early, so
		 * setting the saved value back, as a restore must (CRIU does
		 * the same), reads back up to one tick more than was saved.
		 */
		if (timers[i].which != ITIMER_REAL)
			timeradd(&before[i].it_value, &tick, &before[i].it_value);
		if (timercmp(&it.it_value, &before[i].it_value, >) ||
		    it.it_value.tv_sec < timers[i].value - 600)
			return fail("%s: value %ld.%06ld, was %ld.%06ld", timers[i].name,
				    it.it_value.tv_sec, it.it_value.tv_usec,
				    before[i].it_value.tv_sec,
				    before[i].it_value.tv_usec), 1;
	}
	pass();
	return 0;
}
