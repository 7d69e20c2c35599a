// SPDX-License-Identifier: MIT
/*
 * The uffd-wp tracker: a userfaultfd created inside the target with a
 * remote syscall, moved to a high fd number (close-on-exec), taken out
 * with pidfd_getfd, set up for WP_ASYNC | WP_UNPOPULATED, its writable
 * private VMAs registered in WP mode. No event features: nobody reads
 * this fd, and an event would block the target.
 */
#define LOG_PREFIX "uffd-wp: "
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/log.h"
#include "base/proc.h"
#include "base/remote.h"
#include "mem/track.h"
#include "mem/track_internal.h"
#include "base/uapi.h"
#include "base/util.h"

#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif

#define TRACK_FEATURES (UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED)

/* Where the tracker lives in the target: high, below the fd limit. */
static int pick_target_fd(pid_t pid)
{
	cleanup_free char *lim = read_proc(pid, "limits", NULL);
	const char *l = lim ? strstr(lim, "Max open files") : NULL;
	long soft = l ? strtol(l + strlen("Max open files"), NULL, 10) : 1024;

	return max(min(soft, 1024L) - 32, 3L);
}

static int getfd(pid_t pid, int target_fd)
{
	int pidfd = syscall(__NR_pidfd_open, pid, 0), fd;

	if (pidfd < 0)
		return -errno;
	fd = syscall(__NR_pidfd_getfd, pidfd, target_fd, 0);
	if (fd < 0)
		fd = -errno;
	close(pidfd);
	return fd;
}

/* userfaultfd() in the target, moved up to a high number; returns it or -errno. */
static int inject(pid_t pid)
{
	struct remote r;
	long fd, hi;
	int ret = remote_init_bare(&r, pid);

	if (ret)
		return ret;
	ret = remote_syscall(&r, SYS_userfaultfd, &fd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY,
			     0, 0, 0, 0, 0);
	if (!ret && fd == -EINVAL) /* before 5.11: no user-mode-only flag */
		ret = remote_syscall(&r, SYS_userfaultfd, &fd, O_CLOEXEC | O_NONBLOCK, 0, 0, 0, 0, 0);
	if (!ret && fd < 0) {
		pr_err("userfaultfd() in %d failed: %s\n", pid, strerror(-fd));
		ret = fd;
	}
	if (!ret) {
		ret = remote_syscall(&r, SYS_fcntl, &hi, fd, F_DUPFD_CLOEXEC, pick_target_fd(pid),
				     0, 0, 0);
		if (!ret && hi < 0)
			hi = fd; /* no room up there: keep it where it is */
		else if (!ret)
			remote_syscall(&r, SYS_close, &(long){ 0 }, fd, 0, 0, 0, 0, 0);
		if (!ret)
			ret = hi;
	}
	remote_fini(&r);
	return ret;
}

static int remote_close(pid_t pid, int fd)
{
	struct remote r;
	long rv;
	int ret = remote_init_bare(&r, pid);

	if (ret)
		return ret;
	ret = remote_syscall(&r, SYS_close, &rv, fd, 0, 0, 0, 0, 0);
	remote_fini(&r);
	return ret ? ret : (int)rv;
}

int uffdwp_prepare(struct track_task *tt, int prev_fd)
{
	struct uffdio_api api = { .api = UFFD_API, .features = TRACK_FEATURES };
	int fd;

	if (prev_fd >= 0 && track_is_tracker_fd(tt->pid, prev_fd)) {
		fd = getfd(tt->pid, prev_fd);
		if (fd >= 0) {
			tt->uffd = fd;
			tt->target_fd = prev_fd;
			pr_debug("%d: tracker at fd %d picked up\n", tt->pid, prev_fd);
			return 0;
		}
	}
	if (prev_fd >= 0)
		pr_info("%d: tracker fd %d is gone: every page counts as written\n", tt->pid,
			prev_fd);
	/*
	 * A tracker from an unrelated chain (or inherited from a parent
	 * process) would keep the VMAs registered: ours could not register.
	 */
	if (uffdwp_remove(tt->pid) < 0)
		pr_warn("%d: can't remove an old tracker\n", tt->pid);
	tt->fresh = true;
	tt->target_fd = inject(tt->pid);
	if (tt->target_fd < 0)
		return tt->target_fd;
	fd = getfd(tt->pid, tt->target_fd);
	if (fd < 0 || ioctl(fd, UFFDIO_API, &api)) {
		pr_perror("can't set up the tracker of %d (fd %d)", tt->pid, tt->target_fd);
		if (fd >= 0)
			close(fd);
		remote_close(tt->pid, tt->target_fd);
		tt->target_fd = -1;
		return -EIO;
	}
	tt->uffd = fd;
	pr_debug("%d: tracker armed at fd %d\n", tt->pid, tt->target_fd);
	return 0;
}

int uffdwp_register(struct track_task *tt, uint64_t start, uint64_t end)
{
	struct uffdio_register reg = {
		.range = { .start = start, .len = end - start },
		.mode = UFFDIO_REGISTER_MODE_WP,
	};

	if (tt->uffd < 0)
		return -EBADF;
	if (ioctl(tt->uffd, UFFDIO_REGISTER, &reg)) {
		pr_debug("%d: can't track %#llx-%#llx (%s): counted as written\n", tt->pid,
			 (unsigned long long)start, (unsigned long long)end, strerror(errno));
		return -errno;
	}
	return 0;
}

int uffdwp_remove(pid_t pid)
{
	char path[64];
	struct dirent *de;
	int nr = 0, ret = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	d = opendir(path);
	if (!d)
		return -errno;
	while (!ret && (de = readdir(d))) {
		int fd = atoi(de->d_name);

		if (de->d_name[0] == '.' || !track_is_tracker_fd(pid, fd))
			continue;
		ret = remote_close(pid, fd);
		if (!ret) {
			pr_info("%d: tracker fd %d closed\n", pid, fd);
			nr++;
		}
	}
	closedir(d);
	return ret ? ret : nr;
}
