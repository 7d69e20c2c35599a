/* SPDX-License-Identifier: MIT */
#ifndef AMBER_RESTORE_NS_H
#define AMBER_RESTORE_NS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "image/image.h"
#include "mem/pagemap_chain.h"

struct rst_ctx;
struct UtsnsEntry;
struct IpcVarEntry;
struct MqueueEntry;
struct NetDeviceEntry;

/*
 * The namespaces the dumped tree had of its own (dump/ns.h): today a UTS
 * namespace, named by the root's ids.uts_ns_id with its utsns-<id>.img,
 * an IPC namespace (ids.ipc_ns_id, ipcns-var-<id>.img and its SysV
 * objects, below) and a
 * network namespace (ids.net_ns_id: netdev-<id>.img, ifaddr-, route-,
 * route6-<id>.img; ns_net.c). The restored root makes the UTS, IPC and
 * mount ones before it forks its children; amber's thread makes the
 * network one before the shared files and the root's clone.
 */
/* The tree's own mounts (mnt.c): e[0] is the root mount, on --root. */
struct MntEntry;
struct rst_mnt {
	struct MntEntry **e;
	size_t nr;    /* 0: the tree keeps amber's mounts */
	size_t *order; /* indexes into e[], parents (and bind sources) first */
	bool root_overlay; /* the saved overlay is mounted on --root, not --root bound */
	bool root_made;	   /* in the root: the new root mount is made, */
	int root_fd;	   /* this O_PATH fd on it */
	int *tmpfs_imgs;   /* each tmpfs's tmpfs-dev image, by mount, or -1 (amber's) */
	char img_name[64];
};

/*
 * The SysV objects of the tree's IPC namespace (ipcns-shm/sem/msg-<id>.img),
 * made again by the restored root in its new namespace with their saved
 * ids: each segment's contents from pagemap-shmem-<segment id>.img, each
 * set's values, each queue's messages in order.
 */
struct IpcShmEntry;
struct IpcSemEntry;
struct IpcMsgEntry;
struct rst_ipc_msg {
	long mtype;
	uint32_t msize;
	void *text;
};
struct rst_ipc_shm {
	struct IpcShmEntry *e;
	struct pm_layer pages; /* vaddr is the offset in the segment */
};
struct rst_ipc_sem {
	struct IpcSemEntry *e;
	uint16_t *vals; /* e->nsems */
};
struct rst_ipc_msq {
	struct IpcMsgEntry *e;
	struct rst_ipc_msg *msgs; /* e->qnum, in queue order */
};
struct rst_ipc {
	struct rst_ipc_shm *shm;
	size_t nr_shm;
	struct rst_ipc_sem *sem;
	size_t nr_sem;
	struct rst_ipc_msq *msq;
	size_t nr_msq;
};

/* The tree's network namespace (ns_net.c). */
#define RST_NET_NR_SAVES 3 /* ifaddr, route, route6 */
struct rst_net {
	struct NetDeviceEntry **links; /* lo and veths */
	size_t nr;		       /* 0 (and no ext_key): the tree keeps amber's namespace */
	/*
	 * netns-ID.img's ext_key: the namespace is the caller's, given as the
	 * inherit_fd ext_fd (the caller's fd, not ours to close).
	 */
	char *ext_key;
	int ext_fd;
	uint32_t id;
	char *save[RST_NET_NR_SAVES]; /* the raw images, NULL if absent */
	size_t save_len[RST_NET_NR_SAVES];
	bool entered; /* amber's thread is in the new one; host_fd is amber's */
	int host_fd;
	/*
	 * Made already, owned by the tree's user namespace (ns_user.c):
	 * amber's thread enters made_fd instead of making one.
	 */
	bool made;
	int made_fd;
};

struct TimensEntry;
struct UsernsEntry;
struct rst_ns {
	/*
	 * The root's ids.user_ns_id has its userns-<id>.img: amber clones the
	 * root with CLONE_NEWUSER and writes these maps (ns_user.c); every
	 * other namespace of the tree is then made from inside it.
	 */
	struct UsernsEntry *user;
	/*
	 * Its amber_owns_netns: the user namespace is made before the root,
	 * with the network namespace it owns, by rst_ns_make_user_net(); the
	 * root joins user_fd (user_joined: it was born in it, cloned by a
	 * child of amber's that joined it first, to own the pid namespace).
	 */
	bool user_made, user_joined;
	int user_fd;
	/*
	 * The root's ids.time_ns_id has its timens-<id>.img: the root makes a
	 * new time namespace whose clocks go on from these, before anything.
	 */
	struct TimensEntry *time;
	struct UtsnsEntry *uts; /* NULL: the tree lives in amber's */
	struct IpcVarEntry *ipc; /* ids.ipc_ns_id: a new one with these sysctls */
	struct rst_ipc ipc_objs; /* and these objects */
	struct MqueueEntry **mqueues; /* and these POSIX queues (ns_ipc_mqueue.c) */
	size_t nr_mqueues;
	struct rst_net net; /* ids.net_ns_id: a new one, its links as saved */
	/*
	 * The root's ids.pid_ns_id differs from the inventory's root_ids
	 * one (as CRIU decides): the root is cloned as init of a new pid
	 * namespace, its children with their saved pids in it.
	 */
	bool new_pid;
	uint32_t inv_pid_ns_id; /* the inventory's root_ids.pid_ns_id, 0 if none */
	/*
	 * The inventory's amber_pidns_proc: the root makes a new mount
	 * namespace (private) and mounts a proc of its pid namespace on
	 * /proc with these options. NULL: the tree keeps amber's /proc.
	 */
	char *proc_opts;
	struct rst_mnt mnt;
};

/* The inventory's part: root_ids.pid_ns_id, amber_pidns_proc. */
struct InventoryEntry;
int rst_ns_inventory(struct rst_ctx *rc, const struct InventoryEntry *ie);
/* Reads and checks the images; a bad one is refused, naming it. */
int rst_ns_load(struct rst_ctx *rc);
void rst_ns_free(struct rst_ns *ns);
/* In the restored root, before anything else: its new namespaces. */
int rst_ns_enter_root(struct rst_ctx *rc);

/* Internal: the per-type parts. */
/* userns-<id>.img, checked (extents, ids amber has, the saved creds): into ns.user. */
int rst_ns_load_user(struct rst_ctx *rc, uint32_t id);
/*
 * In the root, first: it takes the namespace's uid and gid 0 (it was born
 * with amber's, which the namespace does not map), keeping its full set of
 * capabilities there, so that what it makes (mounts, tmpfs files, IPC
 * objects, sysctls the namespace's root owns) is the namespace root's.
 */
int rst_ns_become_user_root(struct rst_ctx *rc);
/* From amber, into the root it cloned in the new namespace, before it runs. */
int rst_ns_write_user_maps(struct rst_ctx *rc, pid_t pid);
bool rst_ns_saved(struct rst_ctx *rc, enum img_type type, uint32_t id);
int rst_ns_load_ipc(struct rst_ctx *rc, uint32_t id);
int rst_ns_enter_ipc(struct rst_ctx *rc);
void rst_ipc_free(struct rst_ipc *ipc);
int rst_ipc_load(struct rst_ctx *rc, uint32_t id);
int rst_ipc_make(struct rst_ctx *rc);
/* ns_ipc_mqueue.c: ipcns-mqueue-<id>.img; the queues made in the caller's namespace */
int rst_mqueue_load(struct rst_ctx *rc, uint32_t id);
int rst_mqueue_make(struct rst_ctx *rc);
void rst_mqueue_free(struct rst_ns *ns);
int rst_write_sysctl(const char *name, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/*
 * The size of SysV segment @shmid a task attaches: a saved one of the
 * tree's IPC namespace, or (none saved) one of amber's that still exists.
 * -errno, naming the task, if there is none.
 */
int rst_ipc_shm_size(struct rst_ctx *rc, pid_t pid, uint64_t shmid, uint64_t *size);
/* Every attach of every task names a segment that is there, large enough. */
int rst_ipc_check_attaches(struct rst_ctx *rc);
/* Once every task has attached its segments: the removed ones removed again. */
int rst_ipc_finish(struct rst_ctx *rc, pid_t host_root);
int rst_ns_load_net(struct rst_ctx *rc, uint32_t id);
/* netns-<id>.img of an external namespace: its inherit_fd, checked. */
int rst_ns_load_net_external(struct rst_ctx *rc, uint32_t id);
void rst_net_free(struct rst_net *net);
/*
 * In amber, before rst_net_enter(), with a network namespace owned by the
 * tree's user namespace: both made by a child that unshares them, the
 * maps written (ns_user.c). No-op otherwise.
 */
int rst_ns_make_user_net(struct rst_ctx *rc);
/* In the root, before it makes its namespaces: it joins the user namespace made so. */
int rst_ns_join_user(struct rst_ctx *rc);
/* Closes what rst_ns_make_user_net() kept (rst_ns_free()). */
void rst_ns_user_close(struct rst_ns *ns);
/* After the clone: the root's network namespace is owned by its user namespace. */
int rst_ns_check_net_owner(struct rst_ctx *rc, pid_t root);
/* The tree has a network namespace other than amber's (made or given). */
static inline bool rst_net_own(const struct rst_net *net)
{
	return net->nr || net->ext_key;
}
/*
 * In amber, before the shared files are made: the calling thread makes
 * the tree's network namespace and stays in it (the root is cloned
 * there) until rst_net_leave(). No-op without one. 0 or -errno.
 */
int rst_net_enter(struct rst_ctx *rc);
int rst_net_leave(struct rst_ctx *rc);
/* timens-<id>.img, checked: a clock the kernel can't give is refused. */
int rst_ns_load_time(struct rst_ctx *rc, uint32_t id);
/* In the restored root, single-threaded: it and its children-to-be in a new one. */
int rst_ns_enter_time(struct rst_ctx *rc);
int rst_mnt_load(struct rst_ctx *rc, uint32_t id);
/*
 * In the root: a mount namespace of its own with --root (or the saved
 * overlay) as the new root mount, held in mnt.root_fd. Called early in a
 * user namespace, while the root still has amber's ids to reach --root.
 */
int rst_mnt_enter_root(struct rst_ctx *rc);
/*
 * In amber, before the root is cloned: each tmpfs's image opened (at or
 * above @base): the tree's user namespace may not reach the images.
 */
int rst_mnt_open_images(struct rst_ctx *rc, int base);
int rst_mnt_enter(struct rst_ctx *rc);
void rst_mnt_free(struct rst_mnt *m);

#endif
