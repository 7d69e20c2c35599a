// SPDX-License-Identifier: MIT
/*
 * The lazy-pages daemon's table of mms (d->mms) and the keeper's journal
 * of what changes it: an mm comes (a task, a fork), is finished (all
 * delivered, or gone) or fails (its task is killed). Used by the loop
 * (lazy/daemon.c), the fault path (lazy/uffd.c) and the prefetcher.
 */
#define LOG_PREFIX "lazy: "
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/nsfs.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "base/pidmap.h"
#include "base/util.h"
#include "lazy/daemon.h"

void lazy_journal(struct lazy_daemon *d, uint32_t type, uint32_t id, uint64_t a, uint64_t b,
		  uint64_t c, int fd)
{
	struct lazy_msg m = { .type = type, .id = id, .a = a, .b = b, .c = c };

	if (d->replaying)
		return;
	/* A lost entry only matters to a resumed daemon; say so and go on. */
	if (lazy_send(d->keeper, &m, fd))
		pr_warn("can't journal event %u of mm %u to the keeper\n", type, id);
}

int lazy_add_mm(struct lazy_daemon *d, struct lazy_mm *mm, int uffd)
{
	struct lazy_mm **n = xrealloc_array(d->mms, d->nr_mms + 1, sizeof(*n));
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = mm };

	if (!n) {
		lazy_mm_free(mm);
		if (uffd >= 0)
			close(uffd);
		return -ENOMEM;
	}
	d->mms = n;
	d->mms[d->nr_mms++] = mm;
	mm->uffd = uffd;
	if (uffd >= 0) {
		fcntl(uffd, F_SETFL, O_NONBLOCK);
		if (epoll_ctl(d->ep, EPOLL_CTL_ADD, uffd, &ev))
			return -errno;
	}
	return 0;
}

void lazy_finish_mm(struct lazy_daemon *d, struct lazy_mm *mm)
{
	if (mm->uffd < 0)
		return;
	/* Unregisters everything: holes left now fill with zeros by the kernel. */
	epoll_ctl(d->ep, EPOLL_CTL_DEL, mm->uffd, NULL);
	close(mm->uffd);
	mm->uffd = -1;
	pr_info("mm %u (images of task %d) complete\n", mm->id, mm->pid);
	lazy_journal(d, LZ_GONE, mm->id, 0, 0, 0, -1);
	lazy_kick(d); /* maybe the last one: the main thread checks */
}

/*
 * The task of @mm as the daemon sees it: mm->pid is the tree's, which in
 * a pid namespace of its own names another process here. Found by its
 * namespace and its pid there (NSpid); 0 if it is gone.
 */
/*
 * A task in a pid namespace nested below @ns_ino (pidns.c's trees) is
 * @pid there: its namespace's ancestors (NS_GET_PARENT, allowed up to
 * ours) say how many levels below it is, its NSpid the pid at that level.
 */
static bool pid_in_ns_below(pid_t task, const char *ns_path, uint64_t ns_ino, pid_t pid)
{
	pid_t pids[PIDNS_MAX_LEVELS];
	int fd = open(ns_path, O_RDONLY | O_CLOEXEC), up = 0, levels;
	struct stat st;

	while (fd >= 0 && !fstat(fd, &st) && st.st_ino != ns_ino && up < PIDNS_MAX_LEVELS) {
		int parent = ioctl(fd, NS_GET_PARENT);

		close(fd);
		fd = parent;
		up++;
	}
	if (fd < 0)
		return false;
	close(fd);
	return up > 0 && st.st_ino == ns_ino &&
	       !proc_ns_pids(task, pids, PIDNS_MAX_LEVELS, &levels) && levels > up &&
	       pids[levels - 1 - up] == pid;
}

static pid_t mm_host_pid(const struct lazy_mm *mm)
{
	struct stat mine;
	struct dirent *e;
	pid_t found = 0;
	DIR *dir;

	if (!mm->pid_ns || (!stat("/proc/self/ns/pid", &mine) && mine.st_ino == mm->pid_ns))
		return mm->pid;
	dir = opendir("/proc");
	while (dir && !found && (e = readdir(dir))) {
		char path[300];
		struct stat ns;
		pid_t pid = atoi(e->d_name), inner;
		int levels;

		snprintf(path, sizeof(path), "/proc/%s/ns/pid", e->d_name);
		if (pid > 0 && !stat(path, &ns) && ns.st_ino == mm->pid_ns &&
		    !proc_ns_pid(pid, &inner, &levels) && inner == mm->pid)
			found = pid;
		else if (pid > 0 && pid_in_ns_below(pid, path, mm->pid_ns, mm->pid))
			found = pid;
	}
	if (dir)
		closedir(dir);
	return found;
}

void lazy_fail_mm(struct lazy_daemon *d, struct lazy_mm *mm, int err)
{
	if (err == -ESRCH) {
		pr_info("mm %u (task %d's pages) is gone\n", mm->id, mm->pid);
	} else {
		/* Never let the task run on with a page we can't give it. */
		pr_err("mm %u of task %d: %s: killing the task\n", mm->id, mm->pid,
		       strerror(-err));
		if (mm->id < LAZY_FORK_ID_BASE) {
			pid_t pid = mm_host_pid(mm);

			if (pid > 0) /* never kill(0): our own group */
				kill(pid, SIGKILL);
		}
		d->st.killed++;
	}
	mm->nr_pending = 0;
	lazy_kick(d); /* the main thread closes its uffd (finish_complete()) */
}
