// SPDX-License-Identifier: MIT
/* What amber cannot save yet is refused, never dropped (unsupported.h). */
#define LOG_PREFIX "dump: "
#include <errno.h>
#include <stdio.h>
#include <string.h>
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

/* /proc/PID/timers lists the process's POSIX timers, one "ID:" line each. */
static int check_posix_timers(pid_t pid)
{
	char path[64], line[256];
	int nr = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/timers", pid);
	f = fopen(path, "re");
	if (!f) {
		pr_perror("can't read %s", path);
		return -errno;
	}
	while (fgets(line, sizeof(line), f))
		nr += !strncmp(line, "ID:", 3);
	fclose(f);
	if (nr) {
		pr_err("process %d has %d POSIX timer(s) (timer_create): not supported yet\n",
		       pid, nr);
		return -EOPNOTSUPP;
	}
	return 0;
}

int dump_check_supported(pid_t pid)
{
	int ret = check_namespaces(pid);

	return ret ? ret : check_posix_timers(pid);
}
