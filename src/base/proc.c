// SPDX-License-Identifier: MIT
#define LOG_PREFIX "proc: "
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/log.h"
#include "base/proc.h"
#include "base/util.h"

int proc_parse_stat(pid_t pid, struct proc_stat *st)
{
	cleanup_free char *buf = read_proc(pid, "stat", NULL);
	char *p, *end;
	unsigned long long f[52];
	int i;

	/* ESRCH: it was reaped between the open and the read, gone all the same. */
	if (!buf)
		return errno == ESRCH ? -ENOENT : -errno;
	/* comm may hold spaces and parens: it ends at the last ')'. */
	p = strchr(buf, '(');
	end = strrchr(buf, ')');
	if (!p || !end || end < p)
		return -EINVAL;
	memset(st, 0, sizeof(*st));
	snprintf(st->comm, sizeof(st->comm), "%.*s", (int)(end - p - 1), p + 1);
	p = end + 2;
	st->state = *p;
	p += 2;
	/* Fields 4.. are numbers; f[i] is field i + 4 (1-based, man proc). */
	for (i = 0; i < 49 && *p; i++) {
		f[i] = strtoull(p, &end, 10);
		if (end == p)
			break;
		p = end;
		while (*p == ' ')
			p++;
	}
	if (i < 49) {
		pr_err("short /proc/%d/stat (%d fields)\n", pid, i);
		return -EINVAL;
	}
#define F(n) f[(n) - 4]
	st->ppid = F(4);
	st->pgid = F(5);
	st->sid = F(6);
	st->flags = F(9);
	st->nr_threads = F(20);
	st->start_code = F(26);
	st->end_code = F(27);
	st->start_stack = F(28);
	st->start_data = F(45);
	st->end_data = F(46);
	st->start_brk = F(47);
	st->arg_start = F(48);
	st->arg_end = F(49);
	st->env_start = F(50);
	st->env_end = F(51);
	st->exit_code = F(52);
#undef F
	return 0;
}

static uint64_t hex64(const char *s)
{
	return strtoull(s, NULL, 16);
}

bool proc_task_exited(pid_t pid)
{
	struct proc_stat st;
	int ret = proc_parse_stat(pid, &st);

	return ret == -ENOENT || (!ret && (st.state == 'Z' || st.state == 'X'));
}

int proc_parse_status(pid_t pid, pid_t tid, struct proc_status *st)
{
	char name[64];
	cleanup_free char *buf = NULL;
	char *line, *save = NULL;

	snprintf(name, sizeof(name), "task/%d/status", tid);
	buf = read_proc(pid, name, NULL);
	if (!buf)
		return -errno;
	memset(st, 0, sizeof(*st));
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *v = strchr(line, ':');

		if (!v)
			continue;
		*v++ = 0;
		while (*v == ' ' || *v == '\t')
			v++;
		if (!strcmp(line, "Uid"))
			sscanf(v, "%u %u %u %u", &st->uid[0], &st->uid[1], &st->uid[2], &st->uid[3]);
		else if (!strcmp(line, "Gid"))
			sscanf(v, "%u %u %u %u", &st->gid[0], &st->gid[1], &st->gid[2], &st->gid[3]);
		else if (!strcmp(line, "Groups")) {
			char *e;

			while (*v && st->nr_groups < (int)ARRAY_SIZE(st->groups)) {
				unsigned long g = strtoul(v, &e, 10);

				if (e == v)
					break;
				st->groups[st->nr_groups++] = g;
				v = e;
			}
		} else if (!strcmp(line, "CapInh"))
			st->cap_inh = hex64(v);
		else if (!strcmp(line, "CapPrm"))
			st->cap_prm = hex64(v);
		else if (!strcmp(line, "CapEff"))
			st->cap_eff = hex64(v);
		else if (!strcmp(line, "CapBnd"))
			st->cap_bnd = hex64(v);
		else if (!strcmp(line, "CapAmb"))
			st->cap_amb = hex64(v);
		else if (!strcmp(line, "NoNewPrivs"))
			st->no_new_privs = atoi(v);
		else if (!strcmp(line, "Seccomp"))
			st->seccomp = atoi(v);
		else if (!strcmp(line, "Umask"))
			st->umask = strtoul(v, NULL, 8);
		else if (!strcmp(line, "SigBlk"))
			st->sig_blk = hex64(v);
		else if (!strcmp(line, "SigIgn"))
			st->sig_ign = hex64(v);
		else if (!strcmp(line, "SigCgt"))
			st->sig_cgt = hex64(v);
	}
	return 0;
}

static unsigned long parse_vmflags(const char *s)
{
	static const struct {
		char name[3];
		unsigned long flag;
	} map[] = {
		{ "gd", VMF_GROWSDOWN }, { "dc", VMF_DONTCOPY },   { "dd", VMF_DONTDUMP },
		{ "hg", VMF_HUGEPAGE },	 { "nh", VMF_NOHUGEPAGE }, { "mg", VMF_MERGEABLE },
		{ "wf", VMF_WIPEONFORK }, { "lo", VMF_LOCKED },	   { "io", VMF_IO },
		{ "pf", VMF_PFNMAP },	 { "ms", VMF_MAYSHARE },   { "sr", VMF_SEQ_READ },
		{ "rr", VMF_RAND_READ }, { "ht", VMF_HUGETLB },   { "mw", VMF_MAYWRITE },
	};
	unsigned long flags = 0;

	while (*s) {
		while (*s == ' ')
			s++;
		if (!s[0] || !s[1])
			break;
		for (size_t i = 0; i < ARRAY_SIZE(map); i++)
			if (s[0] == map[i].name[0] && s[1] == map[i].name[1])
				flags |= map[i].flag;
		s += 2;
	}
	return flags;
}

static int parse_maps_line(char *line, struct proc_vma *v)
{
	char perms[5];
	int n = 0;

	memset(v, 0, sizeof(*v));
	if (sscanf(line, "%" SCNx64 "-%" SCNx64 " %4s %" SCNx64 " %x:%x %" SCNu64 " %n", &v->start,
		   &v->end, perms, &v->pgoff, &v->dev_major, &v->dev_minor, &v->ino, &n) < 7)
		return -EINVAL;
	if (perms[0] == 'r')
		v->prot |= PROT_READ;
	if (perms[1] == 'w')
		v->prot |= PROT_WRITE;
	if (perms[2] == 'x')
		v->prot |= PROT_EXEC;
	v->shared = perms[3] == 's';
	line += n;
	while (*line == ' ')
		line++;
	if (*line) {
		v->path = strdup(line);
		if (!v->path)
			return -ENOMEM;
	}
	return 0;
}

static bool is_maps_line(const char *line)
{
	/* "start-end ..." vs "Name:  value" */
	const char *p = line;

	while (isxdigit((unsigned char)*p))
		p++;
	return p != line && *p == '-';
}

bool proc_self_has_cap(int cap)
{
	struct proc_status st = { 0 };

	if (proc_parse_status(getpid(), getpid(), &st))
		return false;
	return st.cap_eff & (1ULL << cap);
}

int proc_parse_smaps(pid_t pid, struct proc_vma **vmas)
{
	cleanup_free char *buf = read_proc(pid, "smaps", NULL);
	struct proc_vma *arr = NULL;
	int nr = 0, cap = 0;
	char *line, *save = NULL;

	if (!buf)
		return -errno;
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (is_maps_line(line)) {
			if (array_make_room(arr, nr, cap, 64))
				goto nomem;
			if (parse_maps_line(line, &arr[nr])) {
				pr_err("bad smaps line for %d: %s\n", pid, line);
				proc_vmas_free(arr, nr);
				return -EINVAL;
			}
			nr++;
		} else if (nr && !strncmp(line, "VmFlags:", 8)) {
			arr[nr - 1].vmflags = parse_vmflags(line + 8);
		} else if (nr && !strncmp(line, "KernelPageSize:", 15)) {
			arr[nr - 1].page_kb = strtoul(line + 15, NULL, 10);
		}
	}
	*vmas = arr;
	return nr;
nomem:
	proc_vmas_free(arr, nr);
	return -ENOMEM;
}

void proc_vmas_free(struct proc_vma *vmas, int nr)
{
	for (int i = 0; i < nr; i++)
		free(vmas[i].path);
	free(vmas);
}

/*
 * "%-25s %-20s %-20s %-10s" per limit, in RLIMIT_* order, after a header
 * line: the values start in column 26, each a number or "unlimited".
 */
static int parse_limit_value(const char *s, char **end, rlim_t *v)
{
	unsigned long long n;

	while (*s == ' ')
		s++;
	if (!strncmp(s, "unlimited", 9)) {
		*v = RLIM_INFINITY;
		*end = (char *)s + 9;
		return 0;
	}
	if (!isdigit((unsigned char)*s))
		return -EBADMSG;
	errno = 0;
	n = strtoull(s, end, 10);
	if (errno)
		return -EBADMSG;
	*v = n;
	return 0;
}

int proc_parse_limits(pid_t pid, struct rlimit *lim, int max)
{
	cleanup_free char *buf = NULL;
	char *line, *save = NULL, *p;
	int n = -1;

	buf = read_proc(pid, "limits", NULL);
	if (!buf)
		return -errno;
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (n < 0) {
			if (strncmp(line, "Limit ", 6))
				break;
			n = 0;
			continue;
		}
		if (n >= max)
			break;
		if (strlen(line) < 27 || parse_limit_value(line + 26, &p, &lim[n].rlim_cur) ||
		    parse_limit_value(p, &p, &lim[n].rlim_max) || (*p && *p != ' ')) {
			pr_err("/proc/%d/limits: can't read line %d: %s\n", pid, n + 2, line);
			return -EBADMSG;
		}
		n++;
	}
	if (n < 0) {
		pr_err("/proc/%d/limits: no header line\n", pid);
		return -EBADMSG;
	}
	return n;
}

static int cmp_pid(const void *a, const void *b)
{
	return *(const pid_t *)a - *(const pid_t *)b;
}

int proc_list_threads(pid_t pid, pid_t **tids)
{
	char path[64];
	DIR *d;
	struct dirent *de;
	pid_t *arr = NULL;
	int nr = 0, cap = 0;

	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	d = opendir(path);
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		if (array_make_room(arr, nr, cap, 16)) {
			free(arr);
			closedir(d);
			return -ENOMEM;
		}
		arr[nr++] = atoi(de->d_name);
	}
	closedir(d);
	/* The leader first, then the others in tid order (none: it is exiting). */
	if (nr > 1)
		qsort(arr, nr, sizeof(*arr), cmp_pid);
	for (int i = 0; i < nr; i++) {
		if (arr[i] == pid && i) {
			memmove(arr + 1, arr, i * sizeof(*arr));
			arr[0] = pid;
		}
	}
	*tids = arr;
	return nr;
}

int proc_list_children(pid_t pid, pid_t **kids)
{
	pid_t *tids = NULL, *arr = NULL;
	int nr_tids, nr = 0, cap = 0;

	nr_tids = proc_list_threads(pid, &tids);
	if (nr_tids < 0)
		return nr_tids;
	for (int i = 0; i < nr_tids; i++) {
		char name[64];
		cleanup_free char *buf = NULL;
		char *p, *e;

		snprintf(name, sizeof(name), "task/%d/children", tids[i]);
		buf = read_proc(pid, name, NULL);
		if (!buf)
			continue;
		for (p = buf;; p = e) {
			long k = strtol(p, &e, 10);

			if (e == p)
				break;
			if (array_make_room(arr, nr, cap, 16)) {
				free(arr);
				free(tids);
				return -ENOMEM;
			}
			arr[nr++] = k;
		}
	}
	free(tids);
	if (nr) /* arr is still NULL without children: qsort wants a real pointer */
		qsort(arr, nr, sizeof(*arr), cmp_pid);
	*kids = arr;
	return nr;
}

int proc_parse_timens_offsets(pid_t pid, struct proc_timens_offsets *o)
{
	cleanup_free char *buf = read_proc(pid, "timens_offsets", NULL);
	char *line, *save = NULL;
	int found = 0;

	if (!buf)
		return -errno;
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char name[16];
		long long sec;
		unsigned long nsec;

		if (sscanf(line, "%15s %lld %lu", name, &sec, &nsec) != 3 || nsec >= 1000000000UL)
			return -EBADMSG;
		if (!strcmp(name, "monotonic")) {
			o->monotonic.tv_sec = sec;
			o->monotonic.tv_nsec = nsec;
			found |= 1;
		} else if (!strcmp(name, "boottime")) {
			o->boottime.tv_sec = sec;
			o->boottime.tv_nsec = nsec;
			found |= 2;
		}
	}
	return found == 3 ? 0 : -EBADMSG;
}

/* Where amber sees the unified hierarchy: "" if it has none. */
int proc_unified_mount(char *out, size_t len)
{
	cleanup_free char *buf = read_proc(0, "mountinfo", NULL);
	char *line, *save = NULL;

	*out = 0;
	if (!buf)
		return -errno;
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char mp[PATH_MAX], fs[32], *sep = strstr(line, " - ");

		if (sep && sscanf(sep, " - %31s", fs) == 1 && !strcmp(fs, "cgroup2") &&
		    sscanf(line, "%*d %*d %*s %*s %4095s", mp) == 1) {
			snprintf(out, len, "%s", mp);
			return 0;
		}
	}
	return 0;
}
