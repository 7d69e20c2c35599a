// SPDX-License-Identifier: MIT
/* What amber cannot save yet is refused, never dropped (unsupported.h). */
#define LOG_PREFIX "dump: "
#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>

#include "base/log.h"
#include "dump/unsupported.h"

/* A tree is restored into amber's own namespaces: any other is lost. */
static const char *const ns_names[] = { "mnt", "pid", "net", "ipc", "uts",
					"cgroup", "user", "time" };

static int check_namespaces(pid_t pid)
{
	for (size_t i = 0; i < sizeof(ns_names) / sizeof(ns_names[0]); i++) {
		char path[64];
		struct stat task_ns, own_ns;

		snprintf(path, sizeof(path), "/proc/self/ns/%s", ns_names[i]);
		if (stat(path, &own_ns))
			continue; /* this kernel lacks the namespace type */
		snprintf(path, sizeof(path), "/proc/%d/ns/%s", pid, ns_names[i]);
		if (stat(path, &task_ns)) {
			pr_perror("can't read %s", path);
			return -errno;
		}
		if (task_ns.st_ino != own_ns.st_ino || task_ns.st_dev != own_ns.st_dev) {
			pr_err("process %d is in its own %s namespace: namespaces are not "
			       "supported yet (the restore would put it in amber's)\n",
			       pid, ns_names[i]);
			return -EOPNOTSUPP;
		}
	}
	return 0;
}

int dump_check_supported(pid_t pid)
{
	return check_namespaces(pid);
}
