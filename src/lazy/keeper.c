// SPDX-License-Identifier: MIT
/*
 * The keeper: a small process forked by `amber lazy-pages` that owns the
 * listening socket and a dup of every uffd. While it lives, a fault in a
 * restored task waits for a daemon, even if the daemon was killed: the
 * kernel only turns a registered range back into plain (zero-filled)
 * memory when the last reference to its uffd is closed.
 *
 * It keeps a journal of everything that defines page state (tasks, forks,
 * remaps, removes, unmaps, finished mms: lazy_proto.h) and replays it to
 * each daemon that connects, the first one (empty journal) or one started
 * with --resume. It exits when a daemon says every page is delivered.
 *
 * For post-copy it also holds the pages files the daemon fetched for what
 * a restore reads eagerly (memfds), and hands them to each restore that
 * asks (LZ_ASK_PAGES), so a resumed daemon never has to fetch them again.
 */
#define LOG_PREFIX "lazy-keeper: "
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lazy/lazy.h"
#include "restore/lazy_proto.h"
#include "base/log.h"
#include "mem/pagemap_chain.h"
#include "base/util.h"

#define MAX_CONNS 16

struct jentry {
	struct lazy_msg *m;
	int fd; /* the uffd of an LZ_TASK or LZ_FORK, until LZ_GONE */
};

struct keeper {
	int listen_fd;
	int daemon_fd;
	int conns[MAX_CONNS]; /* restore connections, and ones not yet introduced */
	bool is_restore[MAX_CONNS];
	int nr_conns;
	struct jentry *j;
	int nr_j;
	uint32_t next_id;
	struct lazy_msg *buf;
	const struct pm_pages_fd *pages; /* the daemon's, inherited across fork */
	int nr_pages;
};

static int journal_add(struct keeper *k, const struct lazy_msg *m, int fd)
{
	size_t len = sizeof(*m) + m->nr_ranges * sizeof(m->ranges[0]);
	struct jentry *n = xrealloc_array(k->j, k->nr_j + 1, sizeof(*n));

	if (!n)
		return -ENOMEM;
	k->j = n;
	n[k->nr_j].m = malloc(len);
	if (!n[k->nr_j].m)
		return -ENOMEM;
	memcpy(n[k->nr_j].m, m, len);
	n[k->nr_j].fd = fd;
	k->nr_j++;
	return 0;
}

static void drop_daemon(struct keeper *k, const char *why)
{
	if (k->daemon_fd < 0)
		return;
	pr_warn("daemon %s: faults wait until `amber lazy-pages --resume` takes over\n", why);
	close(k->daemon_fd);
	k->daemon_fd = -1;
}

/* Appends to the journal and passes it on to the daemon, if there is one. */
static void record(struct keeper *k, struct lazy_msg *m, int fd)
{
	if (journal_add(k, m, fd)) {
		pr_err("out of memory: journal entry lost\n");
		return;
	}
	if (k->daemon_fd >= 0 && lazy_send(k->daemon_fd, m, fd))
		drop_daemon(k, "unreachable");
}

static void close_mm(struct keeper *k, uint32_t id)
{
	for (int i = 0; i < k->nr_j; i++) {
		struct lazy_msg *m = k->j[i].m;

		if ((m->type == LZ_TASK || m->type == LZ_FORK) && m->id == id && k->j[i].fd >= 0) {
			close(k->j[i].fd);
			k->j[i].fd = -1;
		}
	}
}

static int replay(struct keeper *k, int fd)
{
	struct lazy_msg end = { .type = LZ_REPLAY_END };

	for (int i = 0; i < k->nr_j; i++) {
		int ret = lazy_send(fd, k->j[i].m, k->j[i].fd);

		if (ret)
			return ret;
	}
	return lazy_send(fd, &end, -1);
}

static bool holds_anything(struct keeper *k)
{
	for (int i = 0; i < k->nr_j; i++)
		if (k->j[i].fd >= 0)
			return true;
	for (int i = 0; i < k->nr_conns; i++)
		if (k->is_restore[i])
			return true;
	return false;
}

static void drop_conn(struct keeper *k, int i)
{
	struct lazy_msg done = { .type = LZ_RESTORE_DONE };

	close(k->conns[i]);
	if (k->is_restore[i])
		record(k, &done, -1);
	k->conns[i] = k->conns[--k->nr_conns];
	k->is_restore[i] = k->is_restore[k->nr_conns];
}

static void send_pages(struct keeper *k, int fd)
{
	struct lazy_msg end = { .type = LZ_PAGES_END, .a = k->nr_pages };

	for (int i = 0; i < k->nr_pages; i++) {
		struct lazy_msg m = { .type = LZ_PAGES, .a = k->pages[i].id };

		if (lazy_send(fd, &m, k->pages[i].fd))
			return; /* the restore sees no LZ_PAGES_END and gives up */
	}
	lazy_send(fd, &end, -1);
}

/*
 * Whether an fd may come with @m: only a task's uffd (LZ_TASK, from a
 * restore) and a child's (LZ_FORK, from the daemon). Any other is closed
 * here with its message refused, never kept open unowned.
 */
static bool fd_expected(const struct lazy_msg *m, int fd, uint32_t carrier)
{
	if (fd < 0 || m->type == carrier)
		return true;
	pr_err("message %u came with an fd: refused\n", m->type);
	close(fd);
	return false;
}

/* A message on connection @i (a restore, or one that has not said hello). */
static void conn_msg(struct keeper *k, int i, struct lazy_msg *m, int fd)
{
	if (!fd_expected(m, fd, LZ_TASK))
		return;
	if (!k->is_restore[i] && m->type == LZ_ASK_PAGES && fd < 0) {
		send_pages(k, k->conns[i]);
		return;
	}
	if (!k->is_restore[i] && m->type == LZ_HELLO_RESTORE) {
		k->is_restore[i] = true;
		return;
	}
	if (!k->is_restore[i] && m->type == LZ_HELLO_DAEMON) {
		int dfd = k->conns[i];

		k->conns[i] = k->conns[--k->nr_conns];
		k->is_restore[i] = k->is_restore[k->nr_conns];
		if (k->daemon_fd >= 0) {
			pr_err("a daemon is already connected: refusing another\n");
			close(dfd);
			return;
		}
		k->daemon_fd = dfd;
		if (replay(k, dfd))
			drop_daemon(k, "failed during the replay");
		else
			pr_info("daemon connected, %d journal entries replayed\n", k->nr_j);
		return;
	}
	if (k->is_restore[i] && m->type == LZ_TASK && fd >= 0) {
		m->id = k->next_id++;
		record(k, m, fd);
		return;
	}
	pr_err("unexpected message %u on a restore connection\n", m->type);
	if (fd >= 0)
		close(fd);
}

/* 1: the daemon is done and the keeper may exit. */
static int daemon_msg(struct keeper *k, struct lazy_msg *m, int fd)
{
	if (!fd_expected(m, fd, LZ_FORK))
		return 0;
	switch (m->type) {
	case LZ_DONE:
		return 1;
	case LZ_FORK:
	case LZ_REMAP:
	case LZ_REMOVE:
	case LZ_UNMAP:
		if (journal_add(k, m, fd))
			pr_err("out of memory: journal entry lost\n");
		return 0;
	case LZ_GONE:
		close_mm(k, m->id);
		journal_add(k, m, -1);
		return 0;
	}
	pr_err("unexpected message %u from the daemon\n", m->type);
	if (fd >= 0)
		close(fd);
	return 0;
}

static void accept_conn(struct keeper *k)
{
	int fd = accept4(k->listen_fd, NULL, NULL, SOCK_CLOEXEC);

	if (fd < 0)
		return;
	if (k->nr_conns == MAX_CONNS) {
		pr_err("too many connections\n");
		close(fd);
		return;
	}
	k->is_restore[k->nr_conns] = false;
	k->conns[k->nr_conns++] = fd;
}

static int keeper_loop(struct keeper *k)
{
	for (;;) {
		struct pollfd p[MAX_CONNS + 2];
		int n = 0, fd, ret;

		p[n++] = (struct pollfd){ .fd = k->listen_fd, .events = POLLIN };
		p[n++] = (struct pollfd){ .fd = k->daemon_fd, .events = POLLIN };
		for (int i = 0; i < k->nr_conns; i++)
			p[n++] = (struct pollfd){ .fd = k->conns[i], .events = POLLIN };
		if (poll(p, n, -1) < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (p[1].revents) {
			while ((ret = lazy_recv(k->daemon_fd, k->buf, &fd)) > 0)
				if (daemon_msg(k, k->buf, fd))
					return 0;
			if (ret != -EAGAIN) {
				drop_daemon(k, ret ? "connection broke" : "exited or was killed");
				if (!holds_anything(k))
					return 0; /* nothing to hand to a resumed daemon */
			}
		}
		/* Connections from the back: drop_conn moves the last one into i. */
		for (int i = n - 3; i >= 0; i--) {
			if (!p[i + 2].revents || i >= k->nr_conns || k->conns[i] != p[i + 2].fd)
				continue;
			while ((ret = lazy_recv(k->conns[i], k->buf, &fd)) > 0) {
				int before = k->nr_conns;

				conn_msg(k, i, k->buf, fd);
				if (k->nr_conns != before)
					break; /* it became the daemon */
			}
			if (ret == 0 || (ret < 0 && ret != -EAGAIN))
				drop_conn(k, i);
		}
		if (p[0].revents)
			accept_conn(k);
	}
}

static bool keeps(const struct keeper *k, int fd)
{
	if (fd <= STDERR_FILENO || fd == k->listen_fd || fd == log_get_fd())
		return true;
	for (int i = 0; i < k->nr_pages; i++)
		if (k->pages[i].fd == fd)
			return true;
	return false;
}

/*
 * The daemon's other fds are not ours: above all its page-server
 * connection, which the server must see closed when the daemon dies, so
 * that it takes the resumed daemon's.
 */
static void close_inherited(const struct keeper *k)
{
	DIR *dir = opendir("/proc/self/fd");
	int fds[256], n = 0, self;
	struct dirent *de;

	if (!dir) {
		pr_perror("can't list our fds");
		return;
	}
	self = dirfd(dir);
	while ((de = readdir(dir)) && n < (int)ARRAY_SIZE(fds)) {
		int fd = atoi(de->d_name);

		if (de->d_name[0] != '.' && fd != self && !keeps(k, fd))
			fds[n++] = fd;
	}
	closedir(dir);
	for (int i = 0; i < n; i++)
		close(fds[i]);
}

pid_t lazy_keeper_start(int listen_fd, const char *path, const struct pm_pages_fd *pages,
			int nr_pages)
{
	struct keeper k = { .listen_fd = listen_fd, .daemon_fd = -1, .next_id = 1,
			    .pages = pages, .nr_pages = nr_pages };
	pid_t pid = fork();
	int ret;

	if (pid)
		return pid < 0 ? -errno : pid;
	/* Out of the daemon's session: a ^C or a group kill must not take us too. */
	setsid();
	signal(SIGINT, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	close_inherited(&k);
	k.buf = malloc(LAZY_MSG_MAX);
	ret = k.buf ? keeper_loop(&k) : -ENOMEM;
	/* Nothing to take over any more: a stale socket would only mislead. */
	unlink(path);
	if (ret)
		pr_err("keeper failed: %s\n", strerror(-ret));
	_exit(ret ? 1 : 0);
}
