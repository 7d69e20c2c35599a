// SPDX-License-Identifier: GPL-2.0
/*
 * timerfds: a one-shot timer that expired unread (one tick), one whose
 * unread ticks were set to 5 with TFD_IOC_SET_TICKS, a periodic monotonic
 * timer far away (interval exact, time left only counts down), an
 * absolute realtime timer (non-blocking) and a fast periodic boottime one
 * still ticking after the restore.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "zdtm.h"

#ifndef TFD_IOC_SET_TICKS
#define TFD_IOC_SET_TICKS _IOW('T', 0, uint64_t)
#endif
#define FAR 1000

static int arm(int fd, int flags, time_t s, long ns, time_t is, long ins)
{
	struct itimerspec its = { { is, ins }, { s, ns } };

	return timerfd_settime(fd, flags, &its, NULL);
}

static uint64_t ticks(int fd)
{
	uint64_t n = 0;

	return read(fd, &n, sizeof(n)) == sizeof(n) ? n : 0;
}

int main(int argc, char **argv)
{
	int once, five, far, abs, fast;
	uint64_t t5 = 5;
	struct itimerspec its;
	struct timespec now;

	test_init(argc, argv);
	once = timerfd_create(CLOCK_MONOTONIC, 0);
	five = timerfd_create(CLOCK_MONOTONIC, 0);
	far = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
	abs = timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK);
	fast = timerfd_create(CLOCK_BOOTTIME, 0);
	clock_gettime(CLOCK_REALTIME, &now);
	if (once < 0 || five < 0 || far < 0 || abs < 0 || fast < 0 ||
	    arm(once, 0, 0, 1000, 0, 0) || arm(far, 0, FAR, 0, FAR, 0) ||
	    arm(abs, TFD_TIMER_ABSTIME, now.tv_sec + FAR, 0, 0, 0) ||
	    arm(fast, 0, 0, 1000000, 0, 1000000))
		return fail_errno("timerfd"), 1;
	if (ioctl(five, TFD_IOC_SET_TICKS, &t5))
		test_skip("TFD_IOC_SET_TICKS: %m (needs CONFIG_CHECKPOINT_RESTORE)");
	usleep(10000);
	test_daemon();
	test_waitsig();

	if (ticks(once) != 1 || ticks(five) != 5)
		return fail("unread expirations lost"), 1;
	if (timerfd_gettime(far, &its) || its.it_interval.tv_sec != FAR ||
	    its.it_interval.tv_nsec || its.it_value.tv_sec >= FAR ||
	    (!its.it_value.tv_sec && !its.it_value.tv_nsec))
		return fail("far timer: %lld.%09ld left, interval %lld.%09ld",
			    (long long)its.it_value.tv_sec, its.it_value.tv_nsec,
			    (long long)its.it_interval.tv_sec, its.it_interval.tv_nsec), 1;
	if (timerfd_gettime(abs, &its) || its.it_value.tv_sec >= FAR ||
	    its.it_value.tv_sec < FAR - 100 || its.it_interval.tv_sec)
		return fail("absolute timer: %lld s left", (long long)its.it_value.tv_sec), 1;
	if (!(fcntl(abs, F_GETFL) & O_NONBLOCK) || fcntl(far, F_GETFD) != FD_CLOEXEC)
		return fail("flags not kept"), 1;
	if (ticks(abs) != 0 || errno != EAGAIN)
		return fail("the absolute timer fired"), 1;
	if (ticks(fast) < 1 || ticks(fast) < 1)
		return fail("the periodic timer stopped"), 1;
	if (timerfd_gettime(fast, &its) || its.it_interval.tv_nsec != 1000000)
		return fail("the periodic timer's interval changed"), 1;
	pass();
	return 0;
}
