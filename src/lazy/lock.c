// SPDX-License-Identifier: MIT
/*
 * How the lazy-pages daemon's two threads share its state (lazy/daemon.h).
 *
 * Faults are served by the main thread; the prefetcher copies the rest in
 * the background. One lock (d->lock) covers the daemon's state; the
 * prefetcher holds it across each batch. Faults from local images need no
 * lock (lazy/uffd.c), but no uffd message may be read while a copy into
 * its mm is in flight, nor a copy start between reading an event and
 * applying it (mm->reading and mm->copying, below): so a fault waits for
 * at most one batch, 2 pages while faults come in. Between batches the
 * prefetcher lets a thread waiting for the lock in first (d->waiting)
 * instead of taking it straight back.
 */
#define LOG_PREFIX "lazy: "
#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>
#include <linux/userfaultfd.h>

#include "base/log.h"
#include "base/util.h"
#include "lazy/daemon.h"

/* Spin this long for the lock before sleeping: longer than one batch. */
#define LOCK_SPIN_NS 100000ULL

uint64_t lazy_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static void lock_spin(struct lazy_daemon *d)
{
	uint64_t t0 = 0;

	for (unsigned i = 1;; i++) {
		if (!pthread_mutex_trylock(&d->lock))
			return;
		cpu_relax();
		if (i % 64)
			continue;
		if (!t0)
			t0 = lazy_now_ns();
		else if (lazy_now_ns() - t0 > LOCK_SPIN_NS)
			break;
	}
	pthread_mutex_lock(&d->lock);
}

void lazy_lock(struct lazy_daemon *d)
{
	atomic_fetch_add(&d->waiting, 1);
	lock_spin(d);
	atomic_fetch_sub(&d->waiting, 1);
}

void lazy_unlock(struct lazy_daemon *d)
{
	/* Whatever changed may be new work (an mm, a finished replay). */
	pthread_cond_signal(&d->work);
	pthread_mutex_unlock(&d->lock);
}

void lazy_yield_to_waiters(struct lazy_daemon *d)
{
	pthread_mutex_unlock(&d->lock);
	for (int i = 0; atomic_load(&d->waiting) && i < 100000; i++)
		cpu_relax(); /* a fault first; bounded, should the main thread be preempted */
	lock_spin(d);
}

void lazy_yield_to_reader(struct lazy_daemon *d, struct lazy_mm *mm)
{
	pthread_mutex_unlock(&d->lock);
	for (int i = 0; __atomic_load_n(&mm->reading, __ATOMIC_SEQ_CST) && i < 100000; i++)
		cpu_relax();
	sched_yield();
	lock_spin(d);
}

void lazy_kick(struct lazy_daemon *d)
{
	uint64_t one = 1;

	if (d->wake_fd >= 0 && write(d->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		pr_warn("can't wake the main thread: %s\n", strerror(errno));
}

/*
 * The prefetcher's UFFDIO_COPY, unless the main thread is reading this
 * mm's uffd: an event it reads must not meet a copy in flight (the kernel
 * checks for pending events only when a copy starts, and lets the event's
 * originator go on, say to zap, as soon as the event is read), nor one
 * picked before the event is applied. Dekker: each sets its flag, then
 * looks at the other's. -EAGAIN: back off.
 */
int lazy_guarded_copy(struct lazy_mm *mm, struct uffdio_copy *c)
{
	int ret = 0;

	__atomic_store_n(&mm->copying, 1, __ATOMIC_SEQ_CST);
	if (__atomic_load_n(&mm->reading, __ATOMIC_SEQ_CST)) {
		c->copy = -EAGAIN;
		errno = EAGAIN;
		ret = -1;
	} else {
		ret = ioctl(mm->uffd, UFFDIO_COPY, c);
	}
	__atomic_store_n(&mm->copying, 0, __ATOMIC_SEQ_CST);
	return ret;
}

void lazy_begin_read(struct lazy_mm *mm)
{
	__atomic_store_n(&mm->reading, 1, __ATOMIC_SEQ_CST);
	while (__atomic_load_n(&mm->copying, __ATOMIC_SEQ_CST))
		cpu_relax(); /* at most one prefetch batch */
}

void lazy_end_read(struct lazy_mm *mm)
{
	__atomic_store_n(&mm->reading, 0, __ATOMIC_SEQ_CST);
}
