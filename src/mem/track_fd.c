// SPDX-License-Identifier: MIT
/*
 * Recognising amber's tracker among a task's fds (no libcompel here: the
 * fd dumper and its unit test use it).
 */
#define LOG_PREFIX "track: "
#include <errno.h>
#include <linux/userfaultfd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mem/track.h"
#include "base/uapi.h"
#include "base/util.h"

/* The features word of a userfaultfd's fdinfo ("API:\t<api>:<features>:<ioctls>"). */
static int uffd_features(pid_t pid, int fd, uint64_t *features)
{
	char name[64], link[64];
	cleanup_free char *info = NULL;
	const char *api;
	ssize_t n;

	snprintf(name, sizeof(name), "/proc/%d/fd/%d", pid, fd);
	n = readlink(name, link, sizeof(link) - 1);
	if (n < 0)
		return -errno;
	link[n] = 0;
	if (strcmp(link, "anon_inode:[userfaultfd]"))
		return -ENOENT;
	snprintf(name, sizeof(name), "fdinfo/%d", fd);
	info = read_proc(pid, name, NULL);
	api = info ? strstr(info, "API:") : NULL;
	if (!api || !(api = strchr(api, ':')) || !(api = strchr(api + 1, ':')))
		return -EINVAL;
	*features = strtoull(api + 1, NULL, 16);
	return 0;
}

bool track_is_tracker_fd(pid_t pid, int fd)
{
	uint64_t f = 0;

	return uffd_features(pid, fd, &f) == 0 && (f & UFFD_FEATURE_WP_ASYNC);
}
