// SPDX-License-Identifier: MIT
/*
 * amber lazy-pages: loads and checks the images, starts the keeper (or,
 * with --resume, finds the one a killed daemon left), and runs the loop:
 * epoll over the keeper connection and every uffd, faults first, then one
 * prefetch batch, until the restore is complete and every page of every
 * mm is delivered or gone.
 */
#define LOG_PREFIX "lazy: "
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lazy/daemon.h"
#include "base/log.h"
#include "base/util.h"

#define EP_KEEPER UINT64_MAX

static struct lazy_mm *find_mm(struct lazy_daemon *d, uint32_t id)
{
	for (int i = 0; i < d->nr_mms; i++)
		if (d->mms[i]->id == id)
			return d->mms[i];
	return NULL;
}

/*
 * Each range of an LZ_TASK is one lazy VMA of the task's image (restore/
 * blob.c): one that is not is no memory of ours to fill, and would size
 * the page state (a byte per page) by whatever the message says.
 */
static bool ranges_in_image(const struct rst_task *t, const struct lazy_msg *m)
{
	for (uint32_t i = 0; i < m->nr_ranges; i++) {
		const VmaEntry *v = mm_vma_at(t->mm, m->ranges[i].start);

		if (!v || m->ranges[i].end > v->end) {
			pr_err("task %d: lazy range %#llx-%#llx is not in a VMA of its images\n",
			       t->pid, (unsigned long long)m->ranges[i].start,
			       (unsigned long long)m->ranges[i].end);
			return false;
		}
	}
	return true;
}

static int task_msg(struct lazy_daemon *d, struct lazy_msg *m, int fd)
{
	struct rst_task *t = rst_find_task(&d->rc, m->pid);
	uint64_t per_layer[PM_MAX_CHAIN] = { 0 };
	char layers[PM_MAX_CHAIN * 24 + 48] = "";
	struct lazy_mm *mm;
	int n = 0;

	if (!t || t->zombie) {
		pr_err("task %d is not in the images of %s\n", m->pid, d->o->dir);
		if (fd >= 0)
			close(fd);
		return -EINVAL;
	}
	mm = ranges_in_image(t, m) ? lazy_mm_new(m->id, t->pid, t - d->rc.tasks, m->ranges,
						 m->nr_ranges)
				   : NULL;
	if (mm)
		mm->pid_ns = m->c;
	for (int r = 0; mm && r < t->pages.nr_lazy; r++) {
		const struct rst_pages *p = &t->pages.lazy[r];
		uint64_t before = mm->nr_pending;

		lazy_mm_set_pending(mm, p->vaddr, p->nr_pages);
		per_layer[p->layer] += mm->nr_pending - before;
	}
	if (!mm) {
		if (fd >= 0)
			close(fd);
		return -EINVAL;
	}
	/* which layer of a chain each page will come from: the newest that holds it */
	for (int k = 0; k < t->pages.nr_layers && t->pages.nr_layers > 1; k++)
		n += snprintf(layers + n, sizeof(layers) - n, "%s%llu", k ? "/" : " (by layer: ",
			      (unsigned long long)per_layer[k]);
	if (n)
		snprintf(layers + n, sizeof(layers) - n, ", newest first)");
	pr_info("task %d: mm %u, %u lazy VMAs, %llu pages to deliver%s\n", m->pid, m->id,
		m->nr_ranges, (unsigned long long)mm->nr_pending, layers);
	return lazy_add_mm(d, mm, fd);
}

/*
 * An LZ_REMAP/REMOVE/UNMAP as the daemon journals the kernel's uffd event:
 * page aligned, within user addresses (lazy/mm.c parks areas above 2^63
 * during a remap), no range that wraps. Anything else would index the
 * page state outside its areas.
 */
static bool event_ok(const struct lazy_msg *m)
{
	const uint64_t top = 1ULL << 56; /* x86-64 user addresses, 5-level paging */
	uint64_t a = m->a, b = m->b, c = m->c;

	if (m->type == LZ_REMAP)
		return !((a | b | c) & (PAGE_SIZE - 1)) && a < top && b < top && c < top;
	return !((a | b) & (PAGE_SIZE - 1)) && a <= b && b <= top;
}

/* A journal entry being replayed, or a live message from the keeper. */
static int keeper_msg(struct lazy_daemon *d, struct lazy_msg *m, int fd)
{
	struct lazy_mm *mm = m->type == LZ_TASK ? NULL : find_mm(d, m->id);

	/* Only a task's or a child's uffd comes with a message: close any other fd. */
	if (fd >= 0 && m->type != LZ_TASK && m->type != LZ_FORK) {
		close(fd);
		return -EINVAL;
	}
	switch (m->type) {
	case LZ_TASK:
		return task_msg(d, m, fd);
	case LZ_RESTORE_DONE:
		d->restore_done = true;
		return 0;
	case LZ_REPLAY_END:
		d->replaying = false;
		return 0;
	case LZ_FORK: {
		struct lazy_mm *parent = find_mm(d, m->a), *child;

		d->next_fork_id = max(d->next_fork_id, m->id + 1);
		child = parent ? lazy_mm_clone(parent, m->id) : NULL;
		if (!child) {
			if (fd >= 0)
				close(fd);
			return -EINVAL;
		}
		return lazy_add_mm(d, child, fd);
	}
	}
	if (!mm || ((m->type == LZ_REMAP || m->type == LZ_REMOVE || m->type == LZ_UNMAP) &&
		    !event_ok(m)))
		return -EINVAL;
	switch (m->type) {
	case LZ_REMAP:
		return lazy_mm_remap(mm, m->a, m->b, m->c);
	case LZ_REMOVE:
		lazy_mm_remove(mm, m->a, m->b);
		return 0;
	case LZ_UNMAP:
		return lazy_mm_unmap(mm, m->a, m->b);
	case LZ_GONE:
		mm->nr_pending = 0;
		if (mm->uffd >= 0)
			close(mm->uffd);
		mm->uffd = -1;
		return 0;
	}
	return -EINVAL;
}

static int read_keeper(struct lazy_daemon *d)
{
	int ret, fd;

	while ((ret = lazy_recv(d->keeper, d->buf, &fd)) > 0) {
		ret = keeper_msg(d, d->buf, fd);
		if (ret) {
			pr_err("bad message %u (mm %u) from the keeper\n", d->buf->type,
			       d->buf->id);
			return ret;
		}
	}
	if (ret == 0) {
		pr_err("the keeper is gone: nothing holds the uffds any more\n");
		return -EPIPE;
	}
	return ret == -EAGAIN ? 0 : ret;
}

static bool all_done(struct lazy_daemon *d)
{
	if (!d->restore_done || d->replaying)
		return false;
	for (int i = 0; i < d->nr_mms; i++)
		if (d->mms[i]->uffd >= 0)
			return false;
	return true;
}

#define EP_WAKE (UINT64_MAX - 1)

static void drain_wake(struct lazy_daemon *d)
{
	uint64_t n;

	if (read(d->wake_fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		pr_warn("wake eventfd: %s\n", strerror(errno));
}

/* One epoll round's work; takes the lock where it needs it. */
static int handle(struct lazy_daemon *d, struct epoll_event *ev, int n)
{
	int ret = 0;

	/*
	 * Without prefetch nothing would notice a task that exits with
	 * pages pending (no uffd event says so): when idle, probe.
	 */
	if (n == 0 && d->o->no_prefetch && !d->replaying) {
		lazy_lock(d);
		ret = lazy_probe(d);
		lazy_unlock(d);
	}
	for (int i = 0; i < n && !ret; i++) {
		if (ev[i].data.u64 == EP_KEEPER) {
			lazy_lock(d);
			lazy_apply_served(d);
			ret = read_keeper(d);
			lazy_unlock(d);
		} else if (ev[i].data.u64 == EP_WAKE) {
			drain_wake(d);
		} else if (!d->replaying) { /* not before the whole state is rebuilt */
			ret = lazy_handle_uffd(d, ev[i].data.ptr);
		}
	}
	lazy_flush_wakes(d);
	return ret;
}

/* Closes the uffds of mms with nothing left to deliver (some the prefetcher completed). */
static void finish_complete(struct lazy_daemon *d)
{
	for (int i = 0; i < d->nr_mms; i++)
		if (d->mms[i]->uffd >= 0 && !d->mms[i]->nr_pending)
			lazy_finish_mm(d, d->mms[i]);
}

/*
 * Before the main thread sleeps: settle the page state, and retry faults
 * that met a pending event (-EAGAIN): the kernel lets copies in again only
 * once the event's originator runs on, which may be after we read it.
 * 1 if all is done; *retry_left: faults still queued.
 */
static int settle(struct lazy_daemon *d, bool *retry_left)
{
	int ret;

	lazy_lock(d);
	lazy_apply_served(d);
	ret = d->replaying ? 0 : lazy_retry_all(d);
	*retry_left = ret > 0;
	finish_complete(d);
	if (ret >= 0)
		ret = d->prefetch_err ? d->prefetch_err : all_done(d);
	lazy_unlock(d);
	lazy_flush_wakes(d);
	return ret;
}

/*
 * The main thread: keeper messages, uffd events and faults. Prefetch runs
 * in its own thread (lazy/prefetcher.c), once the restore is complete:
 * until then the restore needs the CPU more than we do.
 */
static int loop(struct lazy_daemon *d)
{
	struct epoll_event wev = { .events = EPOLLIN, .data.u64 = EP_WAKE };
	int ret = lazy_prefetcher_start(d);

	if (!ret && epoll_ctl(d->ep, EPOLL_CTL_ADD, d->wake_fd, &wev))
		ret = -errno;
	while (!ret) {
		struct epoll_event ev[64];
		/* While faults keep coming, no lock: only look again. */
		int n = epoll_wait(d->ep, ev, 64, 0);

		if (n == 0) {
			bool retry_left;

			ret = settle(d, &retry_left);
			if (ret)
				break;
			n = epoll_wait(d->ep, ev, 64,
				       retry_left ? 1 : d->o->no_prefetch ? 100 : -1);
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			break;
		}
		ret = handle(d, ev, n);
	}
	lazy_prefetcher_stop(d);
	return ret < 0 ? ret : 0;
}

/*
 * Binds the socket (0600) for a fresh start; a stale file from a dead
 * daemon is replaced. It is bound under a temporary name and renamed once
 * it listens: whoever sees the path can connect (between bind() and
 * listen() a connect is refused).
 */
static int listen_on(const struct sockaddr_un *sa)
{
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0), probe, err = 0;
	struct sockaddr_un tmp = *sa;
	mode_t old;

	if (fd < 0)
		return -errno;
	probe = lazy_connect(sa);
	if (probe >= 0) {
		close(probe);
		close(fd);
		pr_err("%s: a keeper is already listening (use --resume to take over)\n",
		       sa->sun_path);
		return -EADDRINUSE;
	}
	if (snprintf(tmp.sun_path, sizeof(tmp.sun_path), "%s.%d", sa->sun_path, getpid()) >=
	    (int)sizeof(tmp.sun_path))
		tmp = *sa; /* no room for a temporary name: bind in place */
	unlink(tmp.sun_path);
	old = umask(0077);
	if (bind(fd, (const struct sockaddr *)&tmp, sizeof(tmp)) || listen(fd, 16) ||
	    (strcmp(tmp.sun_path, sa->sun_path) && rename(tmp.sun_path, sa->sun_path))) {
		err = -errno;
		pr_perror("can't listen on %s", sa->sun_path);
		unlink(tmp.sun_path);
		close(fd);
	}
	umask(old);
	return err ? err : fd;
}

static int start(struct lazy_daemon *d)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = EP_KEEPER };
	struct lazy_msg hello = { .type = LZ_HELLO_DAEMON };
	struct sockaddr_un sa;
	int ret;

	ret = lazy_socket_path(d->o->dir, d->o->socket, &sa);
	if (ret)
		return ret;
	if (!d->o->resume) {
		int lfd = listen_on(&sa);
		pid_t k;

		if (lfd < 0)
			return lfd;
		k = lazy_keeper_start(lfd, sa.sun_path, d->pages, d->nr_pages);
		close(lfd);
		if (k < 0)
			return k;
		d->keeper_pid = k;
		pr_info("keeper %d listens on %s\n", k, sa.sun_path);
	}
	d->keeper = lazy_connect(&sa);
	if (d->keeper < 0) {
		errno = -d->keeper;
		pr_perror("can't reach the keeper at %s", sa.sun_path);
		return d->keeper;
	}
	d->replaying = true;
	ret = lazy_send(d->keeper, &hello, -1);
	if (ret)
		return ret;
	d->ep = epoll_create1(EPOLL_CLOEXEC);
	if (d->ep < 0 || epoll_ctl(d->ep, EPOLL_CTL_ADD, d->keeper, &ev))
		return -errno;
	return 0;
}

static int alloc_verified(struct lazy_daemon *d)
{
	d->verified = xzalloc(sizeof(*d->verified) * d->rc.nr_tasks);
	if (!d->verified)
		return -ENOMEM;
	for (int i = 0; i < d->rc.nr_tasks; i++) {
		d->verified[i] = xzalloc(d->rc.tasks[i].pages.nr_lazy + 1);
		if (!d->verified[i])
			return -ENOMEM;
	}
	return 0;
}

/*
 * Post-copy: the images here have no pages files. Each entry is checked
 * when it first arrives (run_data(), lazy_eager.c); a resumed daemon finds
 * the eager pages already with the keeper.
 */
static int load_remote(struct lazy_daemon *d)
{
	d->src = lazy_source_remote(&d->o->ps);
	if (!d->src)
		return errno ? -errno : -ENOTCONN;
	return d->o->resume ? 0 : lazy_fetch_eager(d);
}

static int load_local(struct lazy_daemon *d)
{
	int ret;

	d->src = lazy_source_local(&d->rc);
	if (!d->src)
		return -EIO;
	/* Like an eager restore, refuse a corrupt image before anything runs. */
	ret = lazy_verify_all(d);
	if (ret)
		pr_err("images in %s refused; serving none of them\n", d->o->dir);
	return ret;
}

static int load(struct lazy_daemon *d)
{
	int ret;

	d->ro.dir = d->o->dir;
	d->ro.lazy = true; /* refuse what it cannot serve */
	d->ro.pages_only = true; /* mounts are the restore's: a container's need its --root */
	d->ro.file_locks = true; /* the daemon takes no locks: the restore checks its option */
	d->ro.tcp_close = true;	 /* nor restores connections: the restore loads their streams */
	d->ro.shell_job = true;	 /* nor terminals: the restore checks --shell-job */
	d->rc.opts = &d->ro;
	d->rc.status_fd = d->rc.info_fd = d->rc.lazy_fd = d->rc.uffd_dev_fd = -1;
	if (d->o->page_server) {
		d->no_pages.none = true;
		d->rc.pages_src = &d->no_pages;
	}
	d->rc.dirfd = open(d->o->dir, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
	if (d->rc.dirfd < 0) {
		pr_perror("can't open image directory %s", d->o->dir);
		return -errno;
	}
	ret = rst_load(&d->rc);
	if (ret) {
		pr_err("images in %s refused\n", d->o->dir);
		return ret;
	}
	ret = alloc_verified(d);
	if (ret)
		return ret;
	return d->o->page_server ? load_remote(d) : load_local(d);
}

static void report(struct lazy_daemon *d, uint64_t t0)
{
	struct timespec ts;
	struct lazy_stats *s = &d->st;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	pr_msg("lazy-pages: done in %.3f s: %d mm(s), %llu faults (mean %.1f us, max %.1f us), "
	       "%llu pages by fault, %llu prefetched, %llu zero pages, %llu already present, "
	       "%llu events, %llu eager pages fetched\n",
	       (ts.tv_sec * 1e9 + ts.tv_nsec - t0) / 1e9, d->nr_mms,
	       (unsigned long long)s->faults, s->faults ? s->fault_ns / 1e3 / s->faults : 0.0,
	       s->fault_ns_max / 1e3, (unsigned long long)s->pages_faulted,
	       (unsigned long long)s->pages_prefetched, (unsigned long long)s->zero_pages,
	       (unsigned long long)s->eexist, (unsigned long long)s->events,
	       (unsigned long long)s->eager_pages);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000ULL + ts.tv_nsec / 1000000;
}

/*
 * After LZ_DONE: until the keeper has exited, at most @ms. Its listening
 * socket holds the mount the images are on (a bound unix socket pins its
 * path) until its last file is released, so a caller that unmounts the
 * image directory next (lazy-pages --pkram) would find it busy. Our own
 * keeper is reaped: its files are released before it can be. One taken
 * over (--resume) is not our child: then until its end of our connection
 * closes, which comes with its exit too.
 */
static void wait_keeper_gone(struct lazy_daemon *d, int ms)
{
	struct pollfd p = { .fd = d->keeper, .events = POLLIN };
	uint64_t end = now_ms() + ms;
	char buf[256];

	while (now_ms() < end) {
		ssize_t n;

		if (d->keeper_pid > 0) {
			pid_t r = waitpid(d->keeper_pid, NULL, WNOHANG);

			if (r == d->keeper_pid || (r < 0 && errno != EINTR))
				return;
			usleep(10000);
			continue;
		}
		if (poll(&p, 1, (int)(end - now_ms())) < 0 && errno != EINTR)
			return;
		n = recv(d->keeper, buf, sizeof(buf), MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			return; /* gone */
	}
	pr_warn("the keeper has not exited %d ms after the last page\n", ms);
}

int lazy_daemon_run(const struct lazy_opts *o)
{
	struct lazy_daemon d = { .o = o, .keeper = -1, .ep = -1, .next_fork_id = LAZY_FORK_ID_BASE,
				 .lock = PTHREAD_MUTEX_INITIALIZER, .work = PTHREAD_COND_INITIALIZER,
				 .wake_fd = -1 };
	struct lazy_msg done = { .type = LZ_DONE };
	struct timespec ts;
	uint64_t t0;
	int ret;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	t0 = ts.tv_sec * 1000000000ULL + ts.tv_nsec;
	d.buf = malloc(LAZY_MSG_MAX);
	ret = d.buf ? load(&d) : -ENOMEM;
	if (!ret)
		ret = start(&d);
	if (!ret)
		ret = loop(&d);
	if (!ret) {
		if (!lazy_send(d.keeper, &done, -1))
			wait_keeper_gone(&d, 10000);
		report(&d, t0);
		if (d.st.killed) {
			pr_err("%llu address space(s) could not be completed: their tasks were "
			       "killed\n", (unsigned long long)d.st.killed);
			ret = -EIO;
		}
	} else {
		pr_err("lazy-pages failed: %s%s\n", strerror(-ret),
		       d.keeper >= 0 ? " (the keeper still holds the uffds: --resume)" : "");
	}
	for (int i = 0; i < d.nr_mms; i++) {
		if (d.mms[i]->uffd >= 0)
			close(d.mms[i]->uffd);
		lazy_mm_free(d.mms[i]);
	}
	free(d.mms);
	if (d.src)
		d.src->ops->close(d.src, !ret);
	for (int i = 0; i < d.nr_pages; i++)
		close(d.pages[i].fd);
	free(d.pages);
	for (int i = 0; d.verified && i < d.rc.nr_tasks; i++)
		free(d.verified[i]);
	free(d.verified);
	rst_free(&d.rc);
	if (d.rc.dirfd >= 0)
		close(d.rc.dirfd);
	if (d.keeper >= 0)
		close(d.keeper);
	if (d.ep >= 0)
		close(d.ep);
	free(d.buf);
	return ret;
}
