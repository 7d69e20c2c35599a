// SPDX-License-Identifier: MIT
/* Host pid <-> the tree's own pid (pidmap.h). */
#define LOG_PREFIX "pidmap: "
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/pidmap.h"
#include "base/util.h"

int pid_map_add(struct pid_map *m, pid_t host, pid_t ns)
{
	struct pid_pair *n;

	for (int i = 0; i < m->nr; i++)
		if (m->p[i].host == host) {
			m->p[i].ns = ns;
			return 0;
		}
	n = xrealloc_array(m->p, m->nr + 1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	m->p = n;
	m->p[m->nr++] = (struct pid_pair){ host, ns };
	return 0;
}

pid_t pid_map_ns(const struct pid_map *m, pid_t host)
{
	for (int i = 0; i < m->nr; i++)
		if (m->p[i].host == host)
			return m->p[i].ns;
	return m->own_ns ? 0 : host;
}

pid_t pid_map_host(const struct pid_map *m, pid_t ns)
{
	for (int i = 0; i < m->nr; i++)
		if (m->p[i].ns == ns)
			return m->p[i].host;
	return m->own_ns ? 0 : ns;
}

void pid_map_free(struct pid_map *m)
{
	free(m->p);
	m->p = NULL;
	m->nr = 0;
}

int proc_ns_pids(pid_t tid, pid_t *pids, int max, int *levels)
{
	char path[64];
	cleanup_free char *buf = NULL;
	char *line, *save = NULL;

	snprintf(path, sizeof(path), "/proc/%d/status", tid);
	buf = read_file_at(-1, path, NULL);
	if (!buf)
		return errno == ESRCH ? -ENOENT : -errno; /* reaped after the open */
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *v, *end;
		int n = 0;

		if (strncmp(line, "NSpid:", 6))
			continue;
		for (v = line + 6;; v = end) {
			long x = strtol(v, &end, 10);

			if (end == v)
				break;
			if (x <= 0 || n == max) {
				pr_err("%s: NSpid %s: more than %d levels or a bad pid\n", path,
				       line + 6, max);
				return -EINVAL;
			}
			pids[n++] = x;
		}
		if (n == 0)
			break;
		*levels = n;
		return 0;
	}
	pr_err("%s has no NSpid line\n", path);
	return -EINVAL;
}

int proc_ns_pid(pid_t tid, pid_t *ns_pid, int *levels)
{
	pid_t pids[PIDNS_MAX_LEVELS];
	int ret = proc_ns_pids(tid, pids, PIDNS_MAX_LEVELS, levels);

	if (!ret)
		*ns_pid = pids[*levels - 1];
	return ret;
}
