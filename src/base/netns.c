// SPDX-License-Identifier: MIT
/* The calling thread's network namespace (netns.h). */
#define LOG_PREFIX "netns: "
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "base/netns.h"

int netns_enter_pid(pid_t pid, int *home)
{
	char path[64];
	int theirs, ret = 0;

	*home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	snprintf(path, sizeof(path), "/proc/%d/ns/net", pid);
	theirs = open(path, O_RDONLY | O_CLOEXEC);
	if (*home < 0 || theirs < 0) {
		ret = -errno;
		pr_perror("can't open the network namespaces of amber and %d", pid);
	} else if (setns(theirs, CLONE_NEWNET)) {
		ret = -errno;
		pr_perror("can't enter the network namespace of %d", pid);
	}
	if (theirs >= 0)
		close(theirs);
	if (ret && *home >= 0) {
		close(*home);
		*home = -1;
	}
	return ret;
}

int netns_return(int home)
{
	int ret = 0;

	if (home < 0)
		return 0;
	if (setns(home, CLONE_NEWNET)) {
		/* Every later socket of this thread would be made there: say so loudly. */
		ret = -errno;
		pr_perror("can't return to amber's network namespace");
	}
	close(home);
	return ret;
}

uint64_t netns_self_ino(void)
{
	struct stat st;

	return stat("/proc/thread-self/ns/net", &st) ? 0 : st.st_ino;
}
