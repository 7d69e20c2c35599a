/* SPDX-License-Identifier: MIT */
#ifndef AMBER_PIDMAP_H
#define AMBER_PIDMAP_H

/*
 * Pids of a tree as amber sees them (host) and as the tree sees them
 * (inside its pid namespace). The images hold the tree's own pids, as
 * CRIU's do; amber needs the host ones for /proc, ptrace and kill.
 * A tree in amber's pid namespace maps every pid to itself.
 */
#include <stdbool.h>
#include <sys/types.h>

struct pid_pair {
	pid_t host, ns;
};

struct pid_map {
	struct pid_pair *p;
	int nr;
	/*
	 * The tree has a pid namespace of its own: a pid not in the map is
	 * outside it, and the tree sees it as 0.
	 */
	bool own_ns;
};

int pid_map_add(struct pid_map *m, pid_t host, pid_t ns);
/* The tree's pid of host pid @host: 0 if outside its own pid namespace. */
pid_t pid_map_ns(const struct pid_map *m, pid_t host);
/* The host pid of the tree's pid @ns: 0 if unknown in its own namespace. */
pid_t pid_map_host(const struct pid_map *m, pid_t ns);
void pid_map_free(struct pid_map *m);

/*
 * Thread @tid (host pid) from its /proc status NSpid: its pid in the
 * innermost pid namespace and the number of namespaces it is seen in
 * (1: only amber's /proc's own).
 */
int proc_ns_pid(pid_t tid, pid_t *ns_pid, int *levels);
/* The kernel's MAX_PID_NS_LEVEL: namespaces a task can be seen in. */
#define PIDNS_MAX_LEVELS 33
/* Pid namespaces below a tree's root's that amber saves and makes again. */
#define PIDNS_NESTED_MAX 8
/*
 * Every pid of @tid (NSpid), outermost (amber's /proc's) first, into
 * @pids[@max]; *@levels how many.
 */
int proc_ns_pids(pid_t tid, pid_t *pids, int max, int *levels);

#endif
