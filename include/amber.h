/* SPDX-License-Identifier: MIT */
#ifndef AMBER_H
#define AMBER_H

/*
 * libamber: checkpoint/restore of Linux process trees in CRIU's image
 * format. The amber command line, the unit tests (and later the RPC
 * server and the CRIU plugin) all go through these entry points.
 *
 *   amber_log_open()          where messages go (the library never writes
 *                             to stdout or stderr but through the log)
 *   amber_dump()              checkpoint a tree into a directory or a page server
 *   amber_pre_dump()          its memory only, the tree keeps running
 *   amber_restore()           bring a tree back (eagerly or --lazy-pages)
 *   amber_lazy_pages()        the daemon that fills a lazy restore's memory
 *   amber_page_server()       receive a dump's pages, or serve them (post-copy)
 *   amber_dedup()             punch pages re-saved by newer images out of parents
 *   amber_net_unlock()        remove the network lock a dump left (amber was killed)
 *   amber_kexec()             dump into a PKRAM store, kexec into the next kernel
 *   amber_kexec_verify()      check an image set as amber kexec does
 *   amber_feature_*()         what this kernel offers (amber check)
 *
 * Every entry point returns 0 or a negative errno. Results other than
 * success travel through out-parameters (a waiting restore hands back the
 * root task's wait status that way, never through the return value).
 *
 * Option structs are extensible, as libbpf's: the caller sets .sz to
 * sizeof() the struct it was built against and zeroes what it does not
 * set. A library built later ignores nothing silently: bytes past its own
 * struct must be zero, or the call fails with -E2BIG; a caller's shorter
 * struct reads as zeros beyond its size. Use AMBER_OPTS() to declare one.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AMBER_OPTS(type, name, ...) \
	struct type name = { .sz = sizeof(struct type), __VA_ARGS__ }

/* ---- log ---- */

enum amber_log_level {
	AMBER_LOG_MSG = 0,
	AMBER_LOG_ERROR = 1,
	AMBER_LOG_WARN = 2,
	AMBER_LOG_INFO = 3,
	AMBER_LOG_DEBUG = 4,
};

/* Errors go to stderr as well as to the log file (a command line wants that). */
#define AMBER_LOG_ERRORS_TO_STDERR 1u

/*
 * @path NULL: stderr. Messages above @level are dropped. Replaces the log
 * opened before, if any; on failure (-errno) the old one stays.
 */
int amber_log_open(const char *path, int level, unsigned flags);
void amber_log_close(void);

/* ---- page-server endpoints ---- */

/*
 * Where a page server is and how to reach it securely. Embedded in the
 * option structs below; its layout is fixed (new security settings go
 * into the enclosing struct, after it).
 */
struct amber_ps_endpoint {
	const char *address; /* server: NULL listens on every address */
	int port;	     /* server: 0 picks a free port */
	const char *token_file; /* shared secret (mode 0600) */
	bool tls;		/* TLS (a server turns it on with tls_cert) */
	const char *tls_cert, *tls_key;
	const char *tls_cacert; /* server: require client certificates signed by it */
	bool tls_no_cn_verify;	/* client: don't match the address to the certificate */
};

/* ---- dump ---- */

enum amber_pre_dump_mode {
	AMBER_PRE_DUMP_SPLICE = 0, /* copy written pages while the tree is frozen */
	AMBER_PRE_DUMP_READ = 1,   /* scan frozen, read once it runs again */
};

/*
 * --network-lock: how a dump keeps the packets of the tree's TCP
 * connections away from it until its restore has run (CRIU's values:
 * the packets are dropped, so no peer sees a RST).
 */
enum amber_network_lock {
	AMBER_NETWORK_LOCK_DEFAULT = 0, /* nftables if libnftables works here, else iptables */
	AMBER_NETWORK_LOCK_IPTABLES = 1,
	AMBER_NETWORK_LOCK_NFTABLES = 2,
	AMBER_NETWORK_LOCK_SKIP = 3,    /* none: the caller locks the network itself */
};

/*
 * A mount the tree gets from outside its container (CRIU's ext_mnt,
 * --ext-mount-map KEY:VAL, --external mnt[KEY]:VAL). At dump: the mount
 * on mountpoint @key is saved as external, named @val. At restore: the
 * external mount named @key is bound from the path @val.
 */
struct amber_ext_mount {
	const char *key;
	const char *val;
};

/*
 * CRIU's --inherit-fd fd[FD]:KEY: the caller's open file @fd (an fd of
 * the process calling amber_restore()) takes the place of the saved file
 * @key. Keys amber knows: "pipe:[INO]", a pipe the dump saw with inode
 * INO (runc and podman give the container's stdio pipes so); the key
 * of an external network namespace (amber_dump_opts.ext_netns_key), @fd
 * then an fd of the network namespace the tree is put in.
 */
struct amber_inherit_fd {
	const char *key;
	int fd;
};

/*
 * A veth of the tree's own network namespace (CRIU's --external
 * veth[IN]:OUT[@BRIDGE], --veth-pair IN=OUT[@BRIDGE], RPC veths): at
 * restore, the veth @in is made again inside, its peer in amber's
 * namespace is named @out and, with @bridge, enslaved to that bridge.
 */
struct amber_veth {
	const char *in;
	const char *out;
	const char *bridge; /* NULL: none */
};

/* CRIU's --manage-cgroups modes (docs/namespaces.md: what amber does in each). */
enum amber_manage_cgroups {
	AMBER_CGROUPS_DEFAULT = 0, /* soft */
	AMBER_CGROUPS_IGNORE,
	AMBER_CGROUPS_SOFT,
	AMBER_CGROUPS_FULL,
	AMBER_CGROUPS_STRICT,
	AMBER_CGROUPS_PROPS, /* properties on existing cgroups, none made */
	AMBER_CGROUPS_NONE,  /* no properties, none made: CRIU's "none" */
};

/*
 * What a dump took, for CRIU's stats-dump (podman --print-stats): times
 * in microseconds.
 */
struct amber_dump_stats {
	uint32_t freezing_us;	/* seizing the tree (and its cgroup frozen) */
	uint32_t frozen_us;	/* from the seize to the tree released or killed */
	uint32_t memdump_us;	/* the tasks' pages read and written out */
	uint64_t pages_written; /* by this dump (an incremental one: the changed ones) */
	uint64_t pages_skipped_parent; /* left to the parent images */
};

struct amber_dump_opts {
	size_t sz;
	pid_t pid;		     /* root of the tree */
	const char *images_dir;
	bool leave_running;
	bool shell_job;
	/* Incremental: NULL, "auto", "soft-dirty" or "uffd-wp". */
	const char *track_mem;
	const char *prev_images_dir; /* the parent images, relative to images_dir */
	bool auto_dedup;
	/* Pages to a page server instead of images_dir (ps.address, ps.port). */
	bool page_server;
	struct amber_ps_endpoint ps;
	/* amber_pre_dump() only: */
	enum amber_pre_dump_mode pre_dump_mode;
	bool cleanup; /* remove amber's memory tracker from the tree, dump nothing */
	/* Unix dgram sockets connected outside the tree: save the peer's name. */
	bool ext_unix_sk;
	enum amber_network_lock network_lock; /* amber_dump() only */
	/* Save flock, POSIX and OFD locks and leases (else a held lock fails the dump). */
	bool file_locks;
	/* Save established TCP connections through TCP_REPAIR (else they fail the dump). */
	bool tcp_established;
	/* Drop connections waiting in a listener's accept queue (else they fail the dump). */
	bool skip_in_flight;
	/* Containers: the mounts from outside (saved by name, not content). */
	const struct amber_ext_mount *ext_mounts;
	size_t nr_ext_mounts;
	enum amber_manage_cgroups manage_cgroups;
	/* A cgroup directory holding the tree: frozen while the tree is seized. */
	const char *freeze_cgroup;
	/*
	 * Post-copy straight out of the frozen tree (CRIU's dump --lazy-pages):
	 * private anonymous pages are not written (PE_LAZY entries); a page
	 * server on ps.address:ps.port serves them from the frozen tree to
	 * `amber lazy-pages --page-server`, and the tree dies once that
	 * daemon has them all. If the serving fails, the tree runs on.
	 */
	bool lazy_pages;
	/* With lazy_pages, if > 0: one zero byte written once serving, then closed. */
	int status_fd;
	/* With lazy_pages: called once serving (the RPC's "status-ready"); nonzero fails. */
	int (*lazy_ready)(void *arg);
	void *lazy_ready_arg;
	/* Filled by a successful amber_dump() or amber_pre_dump() if not NULL. */
	struct amber_dump_stats *stats;
	/*
	 * A container's terminal (CRIU's RPC orphan_pts_master): one pty
	 * whose master is outside the tree (the engine's) is saved with its
	 * slave's settings; its restore makes a new pair (see the restore's).
	 */
	bool orphan_pts_master;
	/*
	 * amber_pre_dump() only: the PKRAM store NAME (mounted at
	 * /run/amber/pkram/NAME if it is not): images_dir is a directory
	 * below its top, for amber_kexec()'s prev_images_dir.
	 */
	const char *pkram;
	/*
	 * CRIU's --external net[INO]:KEY (runc's, for a container whose
	 * network namespace a path names): the tree's network namespace, of
	 * inode @ext_netns_ino, is the caller's, who makes one again for the
	 * restore. Only @ext_netns_key is saved for it, no links, addresses
	 * or routes; its sockets are saved as any. The restore needs an
	 * inherit_fd of that key, an fd of the namespace to put the tree in.
	 */
	const char *ext_netns_key;
	uint64_t ext_netns_ino;
};

int amber_dump(const struct amber_dump_opts *opts);
int amber_pre_dump(const struct amber_dump_opts *opts);

/* ---- restore ---- */

struct amber_restore_opts {
	size_t sz;
	const char *images_dir;
	bool detach;	/* return once the tree runs; else wait for its root */
	bool shell_job;
	bool lazy_pages;	 /* memory arrives through amber_lazy_pages() */
	const char *lazy_socket; /* NULL: IMAGES_DIR/lazy-pages.socket */
	bool ext_unix_sk; /* connect such sockets to their outside peer's name again */
	/* As CRIU: the images' own lock method is used; a different one here is warned about. */
	enum amber_network_lock network_lock;
	bool file_locks;  /* take the saved file locks again (else they are refused) */
	bool tcp_established; /* restore saved TCP connections (else they are refused) */
	bool tcp_close;	      /* or restore them as closed sockets */
	/* Containers: the saved mount namespace's root mount is this directory. */
	const char *root;
	const struct amber_ext_mount *ext_mounts;
	size_t nr_ext_mounts;
	enum amber_manage_cgroups manage_cgroups;
	/* The cgroup (v2: a path under the unified mount) the tasks are put in. */
	const char *cgroup_root;
	/* With detach: the root is the child of amber's parent (CRIU's rst_sibling). */
	bool rst_sibling;
	/*
	 * CRIU's notification points (may be NULL): "setup-namespaces" once
	 * every task exists, stopped, in its namespaces and cgroups;
	 * "post-restore" once all is restored, before the tree runs. @pid is
	 * the root's, as amber sees it. Nonzero fails the restore (every
	 * task is killed).
	 */
	int (*notify)(void *arg, const char *stage, pid_t pid);
	void *notify_arg;
	/*
	 * Restore from the PKRAM store of this name that amber_kexec() left
	 * for this kernel (images_dir must be NULL): mounted, every image and
	 * page checked against its checksum, unmounted after the restore.
	 * The pages are moved out of the store into the tree where the kernel
	 * can (kernel/patches/0005), so the store is used up; pkram_copy
	 * copies them instead and leaves the store intact.
	 */
	const char *pkram;
	bool pkram_copy;
	/* Files of the caller that replace saved ones (see amber_inherit_fd). */
	const struct amber_inherit_fd *inherit_fds;
	size_t nr_inherit_fds;
	/* The host ends of the tree's veths (a veth not named: the kernel's name). */
	const struct amber_veth *veths;
	size_t nr_veths;
	/*
	 * The pty slave the dump saved without its master (orphan_pts_master)
	 * gets a new pair, of the same index in the tree's devpts; the new
	 * master is handed to this callback once every task exists, stopped
	 * (after "setup-namespaces"), and is closed by amber when it returns
	 * (the callee dups what it keeps). Nonzero fails the restore. NULL:
	 * such images are refused.
	 */
	int (*orphan_pts_master)(void *arg, int master_fd);
	void *orphan_pts_master_arg;
};

/*
 * 0 once the tree runs (@opts->detach) or once its root has exited; then
 * *@root_pid is the root's pid and, without detach, *@wait_status its
 * status as waitpid() gives it (WIFEXITED() etc.). Either pointer may be
 * NULL. -errno if the images were refused or the restore failed: then
 * every task it created has been killed.
 */
int amber_restore(const struct amber_restore_opts *opts, pid_t *root_pid, int *wait_status);

/* ---- lazy pages and the page server ---- */

struct amber_lazy_opts {
	size_t sz;
	const char *images_dir;
	const char *socket; /* NULL: IMAGES_DIR/lazy-pages.socket */
	bool resume;	    /* take over from a killed daemon */
	bool no_prefetch;   /* serve faults only */
	/* Post-copy: the pages come from `amber page-server --lazy-pages`. */
	bool page_server;
	struct amber_ps_endpoint ps;
	const char *pkram; /* the images are in this PKRAM store (images_dir NULL) */
};

/* Runs until every restored task has all of its memory. */
int amber_lazy_pages(const struct amber_lazy_opts *opts);

struct amber_page_server_opts {
	size_t sz;
	const char *images_dir;
	const char *prev_images_dir; /* receive: the parent of an incremental dump */
	bool lazy_pages;	     /* serve images_dir's pages instead of receiving */
	int timeout;		     /* seconds a client may stay silent; 0: default */
	struct amber_ps_endpoint ps;
	/* Called once the server listens, with the port it got (may be NULL). */
	void (*listening)(void *arg, const char *address, int port);
	void *listening_arg;
	/* Connections open at once, the served one included; 0: 8. Past it: reset. */
	int max_connections;
};

/* Runs until one session completes. */
int amber_page_server(const struct amber_page_server_opts *opts);

struct amber_dedup_opts {
	size_t sz;
	const char *images_dir;
};

int amber_dedup(const struct amber_dedup_opts *opts);

/* ---- the network lock ---- */

struct amber_net_unlock_opts {
	size_t sz;
	const char *images_dir;
};

/*
 * Removes the network lock the dump in images_dir recorded (a killed
 * amber leaves it; a restore removes it itself). 0 also if there is none.
 */
int amber_net_unlock(const struct amber_net_unlock_opts *opts);

/* ---- kexec: across a kernel update in memory (docs/pkram.md) ---- */

struct amber_kexec_opts {
	size_t sz;
	pid_t pid;	     /* root of the tree */
	const char *pkram;   /* name of the store (tmpfs pkram=NAME), 1-47 of [A-Za-z0-9._-] */
	const char *kernel;  /* the next kernel's bzImage (kexec_file_load) */
	const char *initrd;  /* NULL: none */
	const char *append;  /* added to this kernel's command line (pkram=, kaslr dropped) */
	bool no_reboot;	     /* load the kernel, leave `kexec -e` to the caller */
	/* as in amber_dump_opts */
	bool shell_job;
	bool ext_unix_sk;
	bool file_locks;
	bool tcp_established;
	bool skip_in_flight;
	enum amber_network_lock network_lock;
	/*
	 * NULL-terminated, or NULL: tmpfs mounts of the tree's own, each
	 * mounted with pkram=NAME (a VMM's guest RAM file), preserved too and
	 * mounted again at the same place by the restore; a file mapped
	 * shared there is saved by reference, not copied.
	 */
	const char *const *preserve_mounts;
	/*
	 * The last pre-dump (amber_pre_dump() with pkram), relative to the
	 * store's top, which then must be mounted already and hold only the
	 * pre-dumps: the final dump saves only what was written since, and
	 * the chain goes across with it. NULL: a full dump into a new store.
	 */
	const char *prev_images_dir;
};

/*
 * Freezes and dumps the tree into a new store, then, the tree still
 * frozen, checks the images, preserves the store and loads the kernel;
 * then reboots into it (no return) or, with no_reboot, kills the tree and
 * returns 0. Any failure before: -errno, nothing preserved or loaded, and
 * the tree runs on as it was. With preserve_mounts those are preserved
 * once the tree is gone (the kernel refuses while it holds a file there
 * for writing); a failure from there on restores the tree in place.
 */
int amber_kexec(const struct amber_kexec_opts *opts);

struct amber_kexec_verify_opts {
	size_t sz;
	const char *images_dir;
};

/* 0 if every image and every page matches its checksum, else -errno (-EBADMSG: damaged). */
int amber_kexec_verify(const struct amber_kexec_verify_opts *opts);

/* ---- kernel features ---- */

struct amber_feature {
	const char *name;
	bool ok;
	char detail[160]; /* what was seen, or what is missing and what brings it */
};

int amber_feature_count(void);
/* Index of feature @name, or -ENOENT. */
int amber_feature_lookup(const char *name);
/* Probes feature @index into @out. */
int amber_feature_probe(int index, struct amber_feature *out);
/* Probes every feature into @out[0..amber_feature_count()). */
int amber_features_probe(struct amber_feature *out, int nr);
/* The tracker --track-mem=auto picks here (its name into @kind), and why. */
int amber_track_mem_auto(char *kind, size_t kind_len, char *why, size_t why_len);

#ifdef __cplusplus
}
#endif

#endif
