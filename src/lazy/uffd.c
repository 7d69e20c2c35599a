// SPDX-License-Identifier: MIT
/*
 * The lazy-pages daemon's userfaultfd work: answering faults (UFFDIO_COPY
 * from the images, UFFDIO_ZEROPAGE for holes and removed pages) and
 * following fork/remap/remove/unmap events, on the main thread; and the
 * page copy the prefetcher uses too (lazy_copy_pages()). Every pagemap
 * entry's checksum is checked before the first page of it is delivered.
 */
#define LOG_PREFIX "lazy: "
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <linux/userfaultfd.h>

#include "base/csum.h"
#include "lazy/daemon.h"
#include "base/log.h"
#include "base/util.h"

/* The run of the image task's lazy view @pc holding image address @src, or -1. */
int lazy_find_run(const struct pm_chain *pc, uint64_t src)
{
	int lo = 0, hi = pc->nr_lazy;

	while (lo < hi) {
		int mid = (lo + hi) / 2;
		const struct rst_pages *p = &pc->lazy[mid];

		if (src < p->vaddr)
			hi = mid;
		else if (src >= p->vaddr + (uint64_t)p->nr_pages * PAGE_SIZE)
			lo = mid + 1;
		else
			return mid;
	}
	return -1;
}

/*
 * Bytes of run @r of @mm's image at image address @src. A run with a
 * checksum is read whole the first time, and checked before any of it is
 * delivered: then *whole is set and the whole run is readable around
 * *data (the caller may deliver all of it, as a remote fetch is dear).
 */
static int run_data(struct lazy_daemon *d, struct lazy_mm *mm, int r, uint64_t src, size_t len,
		    const void **data, bool *whole)
{
	const struct rst_pages *p = &lazy_pages_of(d, mm)->lazy[r];
	uint8_t *ok = &d->verified[mm->img][r];
	size_t rlen = (size_t)p->nr_pages * PAGE_SIZE;
	int ret;

	*whole = false;
	if (*ok || !p->csum_ver) {
		if (!*ok)
			*ok = 1;
		return d->src->ops->get(d->src, mm->pid, p->layer, src,
					p->off + (src - p->vaddr), len, data);
	}
	ret = d->src->ops->get(d->src, mm->pid, p->layer, p->vaddr, p->off, rlen, data);
	if (ret)
		return ret;
	if (amber_csum_ver(*data, rlen, p->vaddr, p->csum_ver) != p->csum) {
		pr_err("%d: checksum mismatch in the pages at %#llx (%u pages): corrupt image, "
		       "not delivering it\n", mm->pid, (unsigned long long)p->vaddr,
		       p->nr_pages);
		return -EBADMSG;
	}
	*ok = 1;
	*whole = true;
	*data = (const uint8_t *)*data + (src - p->vaddr);
	return 0;
}

/*
 * Local images: every entry of every layer in use, whole, before anything
 * is served; then every run of the lazy view (which may be a part of an
 * entry, of an older layer) is good to deliver as it is.
 */
int lazy_verify_all(struct lazy_daemon *d)
{
	for (int i = 0; i < d->rc.nr_tasks; i++) {
		struct rst_task *t = &d->rc.tasks[i];

		for (int k = 0; !t->zombie && k < t->pages.nr_layers; k++) {
			const struct pm_layer *l = &t->pages.layers[k];

			for (int e = 0; e < l->nr; e++) {
				const struct pm_ent *pe = &l->ents[e];
				size_t len = (size_t)pe->nr_pages * PAGE_SIZE;
				const void *data;
				int ret;

				if (!pe->used || !pe->csum_ver)
					continue;
				ret = d->src->ops->get(d->src, t->pid, k, pe->vaddr, pe->off, len,
						       &data);
				if (ret)
					return ret;
				if (amber_csum_ver(data, len, pe->vaddr, pe->csum_ver) != pe->csum) {
					pr_err("%d: checksum mismatch in the pages image%s at %#llx "
					       "(%u pages): corrupt image\n", t->pid,
					       k ? " of a parent" : "",
					       (unsigned long long)pe->vaddr, pe->nr_pages);
					return -EBADMSG;
				}
			}
		}
		memset(d->verified[i], 1, t->pages.nr_lazy);
	}
	return 0;
}

/*
 * UFFDIO_COPY of @n pages from @data to @addr in @mm. Pages found already
 * there (a resumed daemon does not know what its predecessor delivered)
 * count as delivered. -EAGAIN: an event must be read first.
 */
static int copy_span(struct lazy_daemon *d, struct lazy_mm *mm, struct lazy_area *a,
		     uint64_t addr, const void *data, uint64_t n, uint64_t mode, uint64_t *copied)
{
	while (n) {
		struct uffdio_copy c = { .dst = addr, .src = (uintptr_t)data, .len = n * PAGE_SIZE,
					 .mode = mode };
		uint64_t done;
		int err;

		if (!(d->in_prefetcher ? lazy_guarded_copy(mm, &c) : ioctl(mm->uffd, UFFDIO_COPY, &c))) {
			lazy_area_done(mm, a, addr, n);
			*copied += n;
			return 0;
		}
		/* c.copy: bytes copied, or -errno; untouched if the mm is gone */
		err = errno;
		if (c.copy == 0)
			c.copy = -err;
		if (c.copy > 0) {
			done = c.copy / PAGE_SIZE;
			lazy_area_done(mm, a, addr, done);
			*copied += done;
		} else if (c.copy == -EEXIST) {
			done = 1; /* already there: delivered before */
			d->st.eexist++;
			lazy_area_done(mm, a, addr, 1);
		} else if (c.copy == -ENOENT && n > 1) {
			/*
			 * The kernel copies into one VMA at a time and fails a
			 * span over two with ENOENT, copying nothing: a chunk
			 * mremapped away and back is a VMA of its own inside the
			 * area. The first page alone says whether it is gone;
			 * the rest is tried again after it.
			 */
			uint64_t one = 0;

			err = copy_span(d, mm, a, addr, data, 1, mode, &one);
			if (err)
				return err;
			*copied += one;
			done = 1;
		} else if (c.copy == -ENOENT) {
			/* Not registered any more: an unmap we have not read yet, or exit. */
			lazy_area_done(mm, a, addr, n);
			return 0;
		} else {
			return (int)c.copy;
		}
		addr += done * PAGE_SIZE;
		data = (const uint8_t *)data + done * PAGE_SIZE;
		n -= done;
	}
	return 0;
}

/* Delivers the PENDING pages of run @p that area @a maps, from @base (the whole run). */
static int copy_rest_of_run(struct lazy_daemon *d, struct lazy_mm *mm, struct lazy_area *a,
			    const struct rst_pages *p, const uint8_t *base)
{
	uint64_t run_end = p->vaddr + (uint64_t)p->nr_pages * PAGE_SIZE;
	uint64_t lo = max(p->vaddr, a->src), hi = min(run_end, a->src + (a->end - a->start));
	uint64_t copied = 0;
	int ret = 0;

	for (uint64_t img = lo; img < hi && !ret;) {
		uint64_t i = (img - a->src) >> PAGE_SHIFT, n = 0;

		while (img + n * PAGE_SIZE < hi && a->st[i + n] == PG_PENDING)
			n++;
		if (n)
			ret = copy_span(d, mm, a, a->start + (img - a->src), base + (img - p->vaddr),
					n, 0, &copied);
		img += max(n, 1) * PAGE_SIZE;
	}
	d->st.pages_prefetched += copied;
	return ret == -EAGAIN ? 0 : ret; /* the rest comes later */
}

int lazy_copy_pages(struct lazy_daemon *d, struct lazy_mm *mm, struct lazy_area *a,
		    uint64_t addr, uint64_t n, uint64_t mode, uint64_t *copied)
{
	uint64_t src = a->src + (addr - a->start);
	int r = lazy_find_run(lazy_pages_of(d, mm), src);
	const void *data;
	bool whole;
	int ret;

	*copied = 0;
	if (r < 0)
		return -EINVAL;
	ret = run_data(d, mm, r, src, n * PAGE_SIZE, &data, &whole);
	if (!ret)
		ret = copy_span(d, mm, a, addr, data, n, mode, copied);
	if (!ret && whole)
		ret = copy_rest_of_run(d, mm, a, &lazy_pages_of(d, mm)->lazy[r],
				       (const uint8_t *)data - (src - lazy_pages_of(d, mm)->lazy[r].vaddr));
	return ret;
}

static int zero_page(struct lazy_daemon *d, struct lazy_mm *mm, uint64_t addr)
{
	struct uffdio_zeropage z = { .range = { .start = addr, .len = PAGE_SIZE },
				     .mode = UFFDIO_ZEROPAGE_MODE_DONTWAKE };

	if (!ioctl(mm->uffd, UFFDIO_ZEROPAGE, &z)) {
		d->st.zero_pages++;
		return 0;
	}
	/* EEXIST: it is there, the thread may still sleep; the caller wakes it. */
	return errno == ENOENT || errno == EEXIST ? 0 : -errno;
}

/*
 * A faulting thread is woken only once the lock is dropped: woken on this
 * CPU, it would preempt us while we hold the lock the prefetcher waits for.
 */
static void defer_wake(struct lazy_daemon *d, struct lazy_mm *mm, uint64_t addr)
{
	if (d->nr_wakes == LAZY_MAX_WAKES)
		lazy_flush_wakes(d);
	d->wakes[d->nr_wakes].uffd = mm->uffd;
	d->wakes[d->nr_wakes].addr = addr;
	d->nr_wakes++;
}

void lazy_flush_wakes(struct lazy_daemon *d)
{
	for (int i = 0; i < d->nr_wakes; i++) {
		struct uffdio_range r = { .start = d->wakes[i].addr, .len = PAGE_SIZE };

		/* The mm may be finished (uffd closed): then it is awake anyway. */
		ioctl(d->wakes[i].uffd, UFFDIO_WAKE, &r);
	}
	d->nr_wakes = 0;
}

static int queue_retry(struct lazy_mm *mm, uint64_t addr)
{
	if (array_make_room(mm->retry, mm->nr_retry, mm->max_retry, 16))
		return -ENOMEM;
	mm->retry[mm->nr_retry++] = addr;
	return 0;
}

static int serve_fault(struct lazy_daemon *d, struct lazy_mm *mm, uint64_t addr)
{
	struct lazy_area *a = lazy_mm_find(mm, addr);
	uint64_t t0 = lazy_now_ns(), copied = 0, dt;
	int ret;

	if (a && a->st[(addr - a->start) >> PAGE_SHIFT] == PG_PENDING)
		ret = lazy_copy_pages(d, mm, a, addr, 1, UFFDIO_COPY_MODE_DONTWAKE, &copied);
	else
		ret = zero_page(d, mm, addr);
	if (ret == -EAGAIN)
		return queue_retry(mm, addr);
	if (ret)
		return ret;
	defer_wake(d, mm, addr);
	dt = lazy_now_ns();
	__atomic_store_n(&d->last_fault_ns, dt, __ATOMIC_RELAXED);
	dt -= t0;
	d->st.faults++;
	d->st.fault_ns += dt;
	d->st.fault_ns_max = max(d->st.fault_ns_max, dt);
	d->st.pages_faulted += copied;
	return 0;
}

int lazy_retry_faults(struct lazy_daemon *d, struct lazy_mm *mm)
{
	int n = mm->nr_retry, ret = 0;

	mm->nr_retry = 0;
	for (int i = 0; i < n && !ret && mm->uffd >= 0; i++)
		ret = serve_fault(d, mm, mm->retry[i]);
	return ret;
}

static int fork_event(struct lazy_daemon *d, struct lazy_mm *mm, int ufd)
{
	struct lazy_mm *child = lazy_mm_clone(mm, d->next_fork_id++);
	int ret;

	if (!child) {
		close(ufd);
		return -ENOMEM;
	}
	ret = lazy_add_mm(d, child, ufd);
	if (ret)
		return ret;
	pr_debug("mm %u forked mm %u (%llu pages pending)\n", mm->id, child->id,
		 (unsigned long long)child->nr_pending);
	lazy_journal(d, LZ_FORK, child->id, mm->id, 0, 0, ufd);
	return 0;
}

static int event(struct lazy_daemon *d, struct lazy_mm *mm, struct uffd_msg *m)
{
	d->st.events++;
	switch (m->event) {
	case UFFD_EVENT_PAGEFAULT:
		d->st.events--;
		return serve_fault(d, mm, m->arg.pagefault.address & ~(PAGE_SIZE - 1));
	case UFFD_EVENT_FORK:
		return fork_event(d, mm, m->arg.fork.ufd);
	case UFFD_EVENT_REMAP:
		lazy_journal(d, LZ_REMAP, mm->id, m->arg.remap.from, m->arg.remap.to,
			     m->arg.remap.len, -1);
		return lazy_mm_remap(mm, m->arg.remap.from, m->arg.remap.to, m->arg.remap.len);
	case UFFD_EVENT_REMOVE:
		lazy_journal(d, LZ_REMOVE, mm->id, m->arg.remove.start, m->arg.remove.end, 0, -1);
		lazy_mm_remove(mm, m->arg.remove.start, m->arg.remove.end);
		return 0;
	case UFFD_EVENT_UNMAP:
		lazy_journal(d, LZ_UNMAP, mm->id, m->arg.remove.start, m->arg.remove.end, 0, -1);
		return lazy_mm_unmap(mm, m->arg.remove.start, m->arg.remove.end);
	}
	pr_warn("mm %u: unknown uffd event %u\n", mm->id, m->event);
	return 0;
}

/*
 * A fault served without the lock (fast_fault()), noted for the page
 * state: applied under the lock before the next event of any mm, and at
 * the latest when the main thread goes to sleep.
 */
static void note_served(struct lazy_daemon *d, struct lazy_mm *mm, uint64_t addr, int how,
			uint64_t dt)
{
	if (d->nr_served == LAZY_MAX_SERVED) {
		lazy_lock(d);
		lazy_apply_served(d);
		lazy_unlock(d);
	}
	d->served[d->nr_served++] = (struct lazy_served){ mm, addr, how, dt };
}

void lazy_apply_served(struct lazy_daemon *d)
{
	for (int i = 0; i < d->nr_served; i++) {
		struct lazy_served *f = &d->served[i];
		struct lazy_area *a = lazy_mm_find(f->mm, f->addr);

		if (a)
			lazy_area_done(f->mm, a, f->addr, 1);
		d->st.faults++;
		d->st.fault_ns += f->ns;
		d->st.fault_ns_max = max(d->st.fault_ns_max, f->ns);
		if (f->how == SERVED_COPY)
			d->st.pages_faulted++;
		else if (f->how == SERVED_ZERO)
			d->st.zero_pages++;
	}
	d->nr_served = 0;
}

/*
 * The fault path without the lock, for a source any thread may read
 * (local images, every entry checked at start): only the main thread
 * changes areas and uffds, and a page the prefetcher delivers meanwhile
 * only makes our copy -EEXIST. 1: not for this path (take the lock).
 */
static int fast_fault(struct lazy_daemon *d, struct lazy_mm *mm, uint64_t addr)
{
	struct lazy_area *a = lazy_mm_find(mm, addr);
	uint64_t t0 = lazy_now_ns(), t;
	int how;

	if (a && __atomic_load_n(&a->st[(addr - a->start) >> PAGE_SHIFT], __ATOMIC_RELAXED) ==
			 PG_PENDING) {
		uint64_t src = a->src + (addr - a->start);
		int r = lazy_find_run(lazy_pages_of(d, mm), src);
		const struct rst_pages *p = r < 0 ? NULL : &lazy_pages_of(d, mm)->lazy[r];
		struct uffdio_copy c = { .dst = addr, .len = PAGE_SIZE };
		const void *data;

		if (!p || !d->verified[mm->img][r] ||
		    d->src->ops->get(d->src, mm->pid, p->layer, src,
				     p->off + (src - p->vaddr), PAGE_SIZE, &data))
			return 1;
		c.src = (uintptr_t)data;
		how = SERVED_COPY;
		if (ioctl(mm->uffd, UFFDIO_COPY, &c)) {
			if (errno == EAGAIN)
				return queue_retry(mm, addr); /* an event first */
			if (errno != EEXIST && errno != ENOENT)
				return 1; /* the locked path reports it */
			how = SERVED_DONE;
		}
	} else {
		struct uffdio_zeropage z = { .range = { .start = addr, .len = PAGE_SIZE } };

		how = SERVED_ZERO;
		if (ioctl(mm->uffd, UFFDIO_ZEROPAGE, &z)) {
			if (errno == EAGAIN)
				return queue_retry(mm, addr);
			if (errno != EEXIST && errno != ENOENT)
				return 1;
			how = SERVED_DONE;
		}
	}
	if (how == SERVED_DONE) {
		/* Delivered by someone else: the thread may still sleep. */
		struct uffdio_range w = { .start = addr, .len = PAGE_SIZE };

		ioctl(mm->uffd, UFFDIO_WAKE, &w);
	}
	t = lazy_now_ns();
	__atomic_store_n(&d->last_fault_ns, t, __ATOMIC_RELAXED);
	note_served(d, mm, addr, how, t - t0);
	return 0;
}

/*
 * One message at a time: the kernel stops copies with -EAGAIN only until
 * an event is read, so a fault read together with a later event (or read
 * before it) must not be served after that event is read and before it is
 * applied.
 */
static int one_message(struct lazy_daemon *d, struct lazy_mm *mm)
{
	/*
	 * A source only one thread may use (remote) is used under the lock,
	 * so take it first: waiting for it while flagged as reading would make
	 * the prefetcher drop every fetch it made meanwhile.
	 */
	bool locked = !d->src->threadsafe || d->replaying;
	struct uffd_msg m;
	ssize_t n;
	int ret;

	if (locked)
		lazy_lock(d);
	lazy_begin_read(mm);
	n = read(mm->uffd, &m, sizeof(m));
	if (n != sizeof(m)) {
		ret = n < 0 && errno == EAGAIN ? 1 : n < 0 ? -errno : -EIO;
		lazy_end_read(mm);
		if (locked)
			lazy_unlock(d);
		return ret;
	}
	if (m.event == UFFD_EVENT_PAGEFAULT && !locked) {
		/* Our own copies need no guard: we are the one who reads events. */
		lazy_end_read(mm);
		ret = fast_fault(d, mm, m.arg.pagefault.address & ~(PAGE_SIZE - 1));
		if (ret <= 0)
			return ret;
		lazy_begin_read(mm);
	}
	if (!locked)
		lazy_lock(d);
	lazy_apply_served(d); /* before the areas change under the notes */
	ret = event(d, mm, &m);
	if (!ret && m.event != UFFD_EVENT_PAGEFAULT)
		ret = lazy_retry_faults(d, mm);
	lazy_end_read(mm); /* applied: the prefetcher may copy again */
	lazy_unlock(d);
	lazy_flush_wakes(d);
	return ret;
}

/* Reads and handles what @mm's uffd has queued. Called without the lock. */
int lazy_handle_uffd(struct lazy_daemon *d, struct lazy_mm *mm)
{
	int ret = 0;

	while (mm->uffd >= 0 && !(ret = one_message(d, mm)))
		;
	if (ret == 1)
		return 0;
	if (ret == -ENOTCONN)
		return ret; /* no source: leave the faults to a resumed daemon */
	lazy_lock(d);
	lazy_apply_served(d);
	lazy_fail_mm(d, mm, ret);
	lazy_unlock(d);
	return 0;
}

/* Faults still waiting for an event's originator to go on (see settle()). */
int lazy_retry_all(struct lazy_daemon *d)
{
	int left = 0;

	for (int i = 0; i < d->nr_mms; i++) {
		struct lazy_mm *mm = d->mms[i];
		int ret;

		if (mm->uffd < 0 || !mm->nr_retry)
			continue;
		ret = lazy_retry_faults(d, mm);
		if (ret == -ENOTCONN)
			return ret;
		if (ret)
			lazy_fail_mm(d, mm, ret);
		left += mm->nr_retry;
	}
	return left;
}
