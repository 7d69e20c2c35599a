/* SPDX-License-Identifier: MIT */
#ifndef AMBER_REMOTE_H
#define AMBER_REMOTE_H

/*
 * Remote syscalls in a frozen task, through libcompel. A remote context
 * owns a compel handle on one thread and a scratch area mapped in the
 * target for syscall arguments; remote_read/remote_write move bytes
 * between the scratch area and our memory. remote_fini() unmaps the
 * scratch area and puts the thread back exactly as it was.
 */
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct parasite_ctl;

struct remote {
	pid_t pid; /* thread group */
	pid_t tid; /* the thread syscalls run in */
	struct parasite_ctl *ctl;
	uint64_t scratch; /* address in the target; 0 when the thread borrows one */
	size_t scratch_len;
	bool owns_scratch;
};

#define REMOTE_SCRATCH_LEN (64 * 1024)

/* Maps a scratch area in @pid (stopped thread @tid). */
int remote_init(struct remote *r, pid_t pid, pid_t tid);
/* Another thread of the same task, sharing @leader's scratch area. */
int remote_init_thread(struct remote *r, const struct remote *leader, pid_t tid);
/* Only the compel handle, no scratch area: for syscalls without memory arguments. */
int remote_init_bare(struct remote *r, pid_t pid);
void remote_fini(struct remote *r);

/* 0 and the syscall's return in *ret (possibly -errno), or -errno if compel failed. */
int remote_syscall(struct remote *r, long nr, long *ret, unsigned long a1, unsigned long a2,
		   unsigned long a3, unsigned long a4, unsigned long a5, unsigned long a6);
int remote_read(struct remote *r, size_t off, void *buf, size_t len);
int remote_write(struct remote *r, size_t off, const void *buf, size_t len);

void remote_log_init(void);

#endif
