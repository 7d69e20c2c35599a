/* SPDX-License-Identifier: MIT */
#ifndef AMBER_DUMP_NS_H
#define AMBER_DUMP_NS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct dump_ctx;
struct TaskKobjIdsEntry;
struct IpcVarEntry;

/*
 * The namespaces of the tree that are not amber's (unsupported.c checked
 * that the whole tree shares them): a UTS namespace of its own is saved
 * as utsns-<id>.img and named by ids.uts_ns_id; the restore makes a new
 * one with the saved names. An IPC namespace of its own is saved as its
 * sysctls (ipcns-var-<id>.img, ids.ipc_ns_id) and SysV objects
 * (ipcns-shm/sem/msg-<id>.img) and POSIX message queues (ipcns-mqueue), a
 * network namespace as its links, addresses and routes (netdev-,
 * ifaddr-, route-, route6-<id>.img, ids.net_ns_id; ns_net.c), read from
 * inside it: dump.c moved this thread there (dc->host_netns_fd).
 * The others are amber's, their ids left out.
 */
/* One line of a uid_map or gid_map. */
struct dump_id_map {
	uint32_t first, lower, count;
};

/*
 * The tree's own user namespace, whose parent is amber's: every task of
 * the tree in it, its other namespaces owned by it (the network one may
 * be amber's, made before it: owns_netns false).
 */
struct dump_userns {
	uint32_t id;	   /* ids.user_ns_id, userns-<id>.img; 0: amber's */
	uint32_t amber_id; /* root_ids.user_ns_id: amber's, another id */
	struct dump_id_map *uid, *gid; /* in the arena */
	size_t nr_uid, nr_gid;
	bool setgroups_deny;
	bool owns_netns; /* the tree's network namespace is owned by it */
};

struct dump_ns {
	uint32_t uts_ns_id; /* 0: amber's own UTS namespace */
	/*
	 * The inventory's root_ids.uts_ns_id: amber's, another id, as for the
	 * pid namespace (CRIU makes a new namespace only when they differ).
	 */
	uint32_t amber_uts_ns_id;
	uint32_t ipc_ns_id; /* 0: amber's own IPC namespace */
	uint32_t net_ns_id; /* 0: amber's own network namespace */
	/*
	 * The inventory's root_ids.net_ns_id: another id (amber's), as for
	 * the pid namespace, which is how CRIU tells it must make one.
	 */
	uint32_t amber_net_ns_id;
	/*
	 * A pid namespace of its own, whose init is the root: ids.pid_ns_id
	 * of every task, and amber's in the inventory's root_ids (as CRIU:
	 * the two differ, so the restore makes a new one).
	 */
	uint32_t pid_ns_id;	  /* 0: amber's */
	uint32_t amber_pid_ns_id; /* root_ids.pid_ns_id */
	/*
	 * The tree's mount namespace (amber's mounts otherwise) has a proc of
	 * its pid namespace on /proc: its mount options, else "".
	 */
	char proc_opts[256];
	/*
	 * A mount namespace with mounts other than amber's: mountpoints-<id>.img
	 * (mnt.c), named by every task's ids.mnt_ns_id. 0: amber's mounts.
	 */
	uint32_t mnt_ns_id;
	/*
	 * amber's own IPC namespace, named in the inventory's root_ids when
	 * the tree has one of its own: CRIU restores a namespace whose id
	 * there differs from the root task's (as for the pid namespace).
	 */
	uint32_t amber_ipc_ns_id;
	/*
	 * The SysV shared memory segments saved with the tree's own IPC
	 * namespace (ipcns-shm-<ipc_ns_id>.img): the tasks' attaches must
	 * name one of them. In the arena.
	 */
	struct dump_shm_seg {
		uint32_t id;
		uint64_t size;
	} *shm;
	size_t nr_shm;
	/*
	 * A time namespace of its own: its clocks in timens-<time_ns_id>.img,
	 * named by every task's ids.time_ns_id; the inventory's root_ids
	 * names amber's (another id, as for the pid namespace).
	 */
	uint32_t time_ns_id; /* 0: amber's */
	uint32_t amber_time_ns_id;
	struct dump_userns user;
};

int dump_namespaces(struct dump_ctx *dc);
/* Sets the namespace ids of a task's (or, @inventory, the inventory's root) ids. */
void dump_ns_fill_ids(const struct dump_ctx *dc, struct TaskKobjIdsEntry *ids, bool inventory);

/* Internal: the per-type parts. */
#define IPC_NS_NR_SYSCTLS 12
extern const char *const ipc_ns_sysctls[IPC_NS_NR_SYSCTLS];
int dump_ns_ipc(struct dump_ctx *dc, pid_t root);
/*
 * The SysV objects of the IPC namespace of @root (not amber's) into
 * ipcns-shm/msg/sem-<dc->ns.ipc_ns_id>.img, and its next-id sysctls into
 * @ie; called with amber's thread in that namespace (ns_ipc.c).
 */
int dump_ipc_sysv(struct dump_ctx *dc, pid_t root, struct IpcVarEntry *ie);
/* ns_ipc_mqueue.c: its POSIX message queues (from inside it too); sets dc->files.mq_dev. */
int dump_ipc_mqueue(struct dump_ctx *dc, pid_t root);
int dump_ns_net(struct dump_ctx *dc, pid_t root);
int dump_mnt_ns(struct dump_ctx *dc, pid_t root);
struct CredsEntry;
/* userns-<id>.img: the maps of @root's user namespace (not amber's), checked (ns_user.c). */
int dump_ns_user(struct dump_ctx *dc, pid_t root);
/*
 * In a child of amber's (single-threaded): into the tree's user namespace
 * as its root, if the tree has one of its own; 0 or -errno.
 */
int dump_ns_user_enter(const struct dump_ctx *dc, pid_t pid);
/*
 * A mount's options as the tree sees them: mountinfo shows tmpfs's and
 * devpts's uid= and gid= in amber's ids; CRIU's images hold the tree's
 * (an id the namespace does not map as 65534, as the kernel shows it).
 */
int dump_ns_user_mount_opts(struct dump_ctx *dc, char **opts);
/* A thread's ids, read in amber's namespace, as the tree sees them. */
int dump_ns_user_creds(const struct dump_ctx *dc, pid_t tid, struct CredsEntry *c);
/* timens-<id>.img: the clocks of @root's time namespace (not amber's). */
int dump_ns_time(struct dump_ctx *dc, pid_t root);

#endif
