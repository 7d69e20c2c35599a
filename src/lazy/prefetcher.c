// SPDX-License-Identifier: MIT
/*
 * The lazy-pages daemon's second thread: background prefetch.
 *
 * Faults are served by the main thread, which sleeps in epoll_wait()
 * until one comes. While this thread keeps another CPU busy copying, the
 * scheduler wakes the main thread on the faulting task's CPU, which the
 * task is just leaving: no cross-CPU wakeup either way (measured here:
 * fault median 40 us with one thread doing both, 7 us with two).
 *
 * One lock (d->lock) covers the daemon's state; this thread holds it
 * across each batch. Faults from local images need no lock (lazy_uffd.c),
 * but no uffd message may be read while a copy into its mm is in flight,
 * nor a copy start between reading an event and applying it (mm->reading
 * and mm->copying): so a fault waits for at most one batch, 2 pages while
 * faults come in. Between batches the prefetcher lets a thread waiting
 * for the lock in first (d->waiting) instead of taking it straight back.
 */
#define LOG_PREFIX "lazy: "
#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "lazy/daemon.h"
#include "base/log.h"
#include "base/util.h"

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

void lazy_kick(struct lazy_daemon *d)
{
	uint64_t one = 1;

	if (d->wake_fd >= 0 && write(d->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		pr_warn("can't wake the main thread: %s\n", strerror(errno));
}

static void *prefetcher(void *arg)
{
	struct lazy_daemon *d = arg;
	int ret = 0;

	pthread_mutex_lock(&d->lock);
	while (!d->stop) {
		ret = d->restore_done && !d->replaying ? lazy_prefetch(d) : 0;
		if (ret < 0)
			break;
		if (!ret) {
			/* Nothing to copy now: the main thread signals new work. */
			pthread_cond_wait(&d->work, &d->lock);
			continue;
		}
		if (ret == 2) {
			/*
			 * The main thread reads (or is about to read) an event of
			 * that mm: let it, without the lock, then go on.
			 */
			struct lazy_mm *mm = d->backoff;

			pthread_mutex_unlock(&d->lock);
			for (int i = 0; __atomic_load_n(&mm->reading, __ATOMIC_SEQ_CST) && i < 100000;
			     i++)
				cpu_relax();
			sched_yield();
			lock_spin(d);
			continue;
		}
		pthread_mutex_unlock(&d->lock);
		for (int i = 0; atomic_load(&d->waiting) && i < 100000; i++)
			cpu_relax(); /* a fault first; bounded, should the main thread be preempted */
		lock_spin(d);
	}
	d->prefetch_err = ret < 0 ? ret : 0;
	pthread_mutex_unlock(&d->lock);
	lazy_kick(d);
	return NULL;
}

int lazy_prefetcher_start(struct lazy_daemon *d)
{
	int ret;

	d->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (d->wake_fd < 0)
		return -errno;
	if (d->o->no_prefetch)
		return 0;
	ret = pthread_create(&d->prefetch_thread, NULL, prefetcher, d);
	if (ret)
		return -ret;
	d->prefetching = true;
	return 0;
}

void lazy_prefetcher_stop(struct lazy_daemon *d)
{
	if (d->prefetching) {
		pthread_mutex_lock(&d->lock);
		d->stop = true;
		pthread_cond_broadcast(&d->work);
		pthread_mutex_unlock(&d->lock);
		pthread_join(d->prefetch_thread, NULL);
		d->prefetching = false;
	}
	if (d->wake_fd >= 0)
		close(d->wake_fd);
	d->wake_fd = -1;
}
