// SPDX-License-Identifier: MIT
/*
 * A dumped fd's description (struct fd_desc) and the file behind it:
 * taken from the frozen task with pidfd_getfd(), once per description
 * where every reader only looks at it (a socket's family, its options,
 * its owner). Below every type's file, so fown.c and common.c both use it.
 */
#define LOG_PREFIX "files: "
#include <errno.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/log.h"
#include "files/files_internal.h"

/* The frozen task's fd @d, as an fd of amber's (pidfd_getfd). */
int files_getfd(const struct fd_desc *d)
{
	int fd = syscall(SYS_pidfd_getfd, d->pidfd, d->fd, 0);

	if (fd < 0)
		pr_perror("pidfd_getfd(pid %d, fd %d)", d->pid, d->fd);
	return fd < 0 ? -errno : fd;
}

int files_peekfd(const struct fd_desc *d)
{
	/* A cache: every desc is allocated, never a const object. */
	struct fd_desc *w = (struct fd_desc *)d;

	if (!d->has_copy) {
		int fd = files_getfd(d);

		if (fd < 0)
			return fd;
		w->copy_fd = fd;
		w->has_copy = true;
	}
	return d->copy_fd;
}

void files_desc_free(struct fd_desc *d)
{
	if (d && d->has_copy)
		close(d->copy_fd);
	free(d);
}
