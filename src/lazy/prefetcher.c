// SPDX-License-Identifier: MIT
/*
 * The lazy-pages daemon's second thread: background prefetch. Once the
 * restore is complete it copies every mm's PENDING pages, a batch at a
 * time, round-robin over the mms (lazy/lock.c says how it shares the
 * daemon with the main thread).
 *
 * Faults are served by the main thread, which sleeps in epoll_wait()
 * until one comes. While this thread keeps another CPU busy copying, the
 * scheduler wakes the main thread on the faulting task's CPU, which the
 * task is just leaving: no cross-CPU wakeup either way (measured here:
 * fault median 40 us with one thread doing both, 7 us with two).
 */
#define LOG_PREFIX "lazy: "
#include <errno.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "lazy/daemon.h"

/* The next run of up to @max PENDING pages from mm's cursor, within one pagemap run. */
static struct lazy_area *next_pending(struct lazy_daemon *d, struct lazy_mm *mm, uint64_t max,
				      uint64_t *addr, uint64_t *n)
{
	const struct pm_chain *pc = lazy_pages_of(d, mm);

	for (int wrapped = 0; wrapped < 2; wrapped++) {
		for (; mm->cur_area < mm->nr_areas; mm->cur_area++, mm->cur_page = 0) {
			struct lazy_area *a = &mm->areas[mm->cur_area];
			uint64_t np = (a->end - a->start) >> PAGE_SHIFT, i = mm->cur_page;

			while (i < np && a->st[i] != PG_PENDING)
				i++;
			if (i == np)
				continue;
			uint64_t src = a->src + (i << PAGE_SHIFT);
			int r = lazy_find_run(pc, src);
			uint64_t run_end = r < 0 ? src + PAGE_SIZE :
				pc->lazy[r].vaddr + (uint64_t)pc->lazy[r].nr_pages * PAGE_SIZE;
			uint64_t j = i;

			while (j < np && j - i < max && a->st[j] == PG_PENDING &&
			       a->src + (j << PAGE_SHIFT) < run_end)
				j++;
			mm->cur_page = j;
			*addr = a->start + (i << PAGE_SHIFT);
			*n = j - i;
			return a;
		}
		mm->cur_area = 0;
		mm->cur_page = 0;
	}
	return NULL;
}

int lazy_probe(struct lazy_daemon *d)
{
	for (int i = 0; i < d->nr_mms; i++) {
		struct lazy_mm *mm = d->mms[i];
		struct lazy_area *a;
		uint64_t addr, n, copied;
		int ret;

		if (mm->uffd < 0 || !mm->nr_pending)
			continue;
		a = next_pending(d, mm, 1, &addr, &n);
		if (!a)
			continue;
		/* A page it will need anyway: its copy is the probe. */
		ret = lazy_copy_pages(d, mm, a, addr, 1, 0, &copied);
		if (ret == -ENOTCONN)
			return ret;
		if (ret && ret != -EAGAIN)
			lazy_fail_mm(d, mm, ret);
		else if (!mm->nr_pending)
			lazy_finish_mm(d, mm);
	}
	return 0;
}

static int prefetch_one(struct lazy_daemon *d)
{
	for (int k = 0; k < d->nr_mms; k++) {
		struct lazy_mm *mm = d->mms[(d->next_prefetch + k) % d->nr_mms];
		struct lazy_area *a;
		uint64_t addr, n, copied;
		bool busy;
		int ret;

		if (mm->uffd < 0 || !mm->nr_pending)
			continue;
		d->next_prefetch = (d->next_prefetch + k + 1) % d->nr_mms;
		/* Small batches while faults come in: a fault waits for at most one. */
		busy = lazy_now_ns() - __atomic_load_n(&d->last_fault_ns, __ATOMIC_RELAXED) <
		       LAZY_QUIET_NS;
		a = next_pending(d, mm, busy ? LAZY_PREFETCH_BUSY : LAZY_PREFETCH_QUIET, &addr, &n);
		if (!a) {
			pr_warn("mm %u: %llu pages counted pending but none found\n", mm->id,
				(unsigned long long)mm->nr_pending);
			mm->nr_pending = 0;
			lazy_kick(d);
			return 1;
		}
		ret = lazy_copy_pages(d, mm, a, addr, n, 0, &copied);
		d->st.pages_prefetched += copied;
		if (ret == -ENOTCONN)
			return ret;
		if (ret == -EAGAIN) {
			/* An event to read first: back where we were, after it. */
			mm->cur_page = (addr - a->start) >> PAGE_SHIFT;
			d->backoff = mm;
			return 2;
		}
		if (ret)
			lazy_fail_mm(d, mm, ret);
		else if (!mm->nr_pending)
			lazy_kick(d); /* complete: the main thread closes its uffd */
		return 1;
	}
	return 0;
}

/*
 * One batch of background copies, under the lock: 1 done, more to do; 2
 * backed off for an event the main thread must apply first; 0 nothing to
 * do; -ENOTCONN.
 */
static int prefetch(struct lazy_daemon *d)
{
	int ret;

	d->in_prefetcher = true; /* its copies go through lazy_guarded_copy() */
	ret = prefetch_one(d);
	d->in_prefetcher = false;
	return ret;
}

static void *prefetcher(void *arg)
{
	struct lazy_daemon *d = arg;
	int ret = 0;

	pthread_mutex_lock(&d->lock);
	while (!d->stop) {
		ret = d->restore_done && !d->replaying ? prefetch(d) : 0;
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
			lazy_yield_to_reader(d, d->backoff);
			continue;
		}
		lazy_yield_to_waiters(d);
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
