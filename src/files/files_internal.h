/* SPDX-License-Identifier: MIT */
#ifndef AMBER_FILES_INTERNAL_H
#define AMBER_FILES_INTERNAL_H

/*
 * Private to src/files/: the state behind files_dump_ctx.st and
 * files_rst_ctx.st, the ops of a file type, and the helpers in common.c.
 *
 * Dump: every open file description gets one id (dumped_file). Two fds,
 * in one task or in several, are the same description when they point to
 * the same inode and kcmp(KCMP_FILE) says so (fallback without kcmp: same
 * inode, pos and flags). Unix sockets are remembered with their peer inode
 * so files_dump_fini() can refuse a socket whose peer is outside the tree.
 *
 * Restore: files.img is loaded into rfile[] sorted by id. Objects that
 * must be shared between tasks (pipes, sockets, ghost files, ttys, and
 * regular files or FIFOs used by more than one task) are opened by
 * files_prepare_shared() (rfile.svc_fd: at the file's own fd number if one
 * task holds it and the number is free, else >= svc_fd_base);
 * everything else is opened by the task itself (files_type.open).
 *
 *   files_types[] (table.c)      one struct files_type per FdTypes value
 *     memfd.c unix*.c inet.c netlink.c packet.c pipe.c (pipes and FIFOs) tty.c (pty.c) reg.c (and ghosts)
 *     eventfd.c signalfd.c timerfd.c epoll.c inotify.c fanotify.c pidfd.c mqueue.c
 *   fown.c                       every type's owner and F_SETSIG (fown_entry)
 *   sockopts.c                   every socket's SOL_SOCKET options (sk_opts_entry)
 *   tcp.c                        an established connection's stream (inet.c)
 *   inet_queue.c                 datagrams queued in a UDP socket (inet.c)
 *   file_lock.c                  --file-locks: filelocks.img (not a type)
 *   files.c                      the dispatcher: fd tables, fdinfo, dedup
 *   common.c                     helpers every type may use
 */
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "base/idx_map.h"
#include "base/sock_diag.h"
#include "fdinfo.pb-c.h"
#include "file-lock.pb-c.h"
#include "files/files.h"
#include "ghost-file.pb-c.h"
#include "files/desc_index.h"
#include "image/image.h"
#include "memfd.pb-c.h"

/* Bits of f_flags that F_SETFL can change. */
#define FILES_SETFL_MASK (O_APPEND | O_NONBLOCK | O_ASYNC | O_DIRECT | O_NOATIME)
/* __O_TMPFILE without the O_DIRECTORY part. */
#define FILES_O_TMPFILE_BIT 020000000
/* Sanity limits for what images may ask for. */
#define FILES_MAX_FD	    (1 << 20)
#define FILES_MAX_PIPE_SZ   (1u << 30)

/* ---- dump ---- */

/* One fd of a frozen task, as /proc describes it. */
struct fd_desc {
	pid_t pid;
	int fd;
	int pidfd;
	struct stat st; /* of the open file (stat through /proc/PID/fd/N) */
	char link[PATH_MAX];
	uint64_t pos;
	uint32_t flags; /* f_flags, O_CLOEXEC stripped */
	bool cloexec;
	int mnt_id;
	int family; /* SO_DOMAIN of a socket, else 0 */
	bool has_locks; /* fdinfo shows a "lock:" line */
	const struct pid_map *pids; /* the dump's host <-> tree pids */
	bool has_copy;	/* copy_fd holds the file (files_peekfd()), closed with the desc */
	int copy_fd;
};

/* Host pid @pid as the tree sees it (the images hold those). */
static inline pid_t fd_ns_pid(const struct fd_desc *d, pid_t pid)
{
	return d->pids ? pid_map_ns(d->pids, pid) : pid;
}

struct dumped_file {
	uint32_t id;
	FdTypes type;
	pid_t pid; /* first holder, for kcmp */
	int fd;
	dev_t dev;
	ino_t ino;
	uint64_t pos;
	uint32_t flags;
};

/* A socket's inode has one open description: sockfs cannot open it again. */
static inline bool files_type_is_socket(FdTypes type)
{
	return type == FD_TYPES__INETSK || type == FD_TYPES__UNIXSK ||
	       type == FD_TYPES__PACKETSK || type == FD_TYPES__NETLINKSK;
}

struct dumped_path {
	uint32_t id;
	dev_t dev;
	ino_t ino;
	char *path;
};

struct dumped_usk {
	uint32_t id, ino, peer, state;
	pid_t pid;
	int fd;
	bool named;
};

struct dumped_tty {
	dev_t rdev;
	uint32_t info_id;
	/* pty.c: a side of a pty pair (index >= 0), else the shell's terminal */
	int index;
	bool master;
	pid_t pid;	/* first holder, named in errors */
	int fd;		/* amber's copy, for the queued data; -1 */
	uint8_t *data;	/* what this side would read, read out at dump_fini */
	size_t len;
	bool data_read;
};

struct dumped_epoll; /* epoll.c */

/* mqueue.c: a queue unlinked while open, saved with its first description */
struct dumped_mq_ghost {
	dev_t dev;
	ino_t ino;
	uint32_t file_id;
};

struct dumped_memfd {
	dev_t dev;
	ino_t ino;
	uint32_t inode_id; /* its memfd_inode_entry */
};

struct files_dump {
	struct img *files_img; /* files.img, shared by every task */
	/*
	 * files.c: dumps amber's own fd @fd (a file in flight in a socket
	 * queue) as a task's fd is dumped, deduplicated; *id. A pointer, so
	 * that a type calling back into the dispatcher makes no file cycle.
	 */
	int (*dump_own_fd)(struct files_dump_ctx *fc, int fd, uint32_t *id);
	struct dumped_file *files;
	int cap_files;
	struct desc_index index; /* files[] by inode and kcmp order (desc_index.h) */
	int nr_files;
	/* sock_diag for unix.c, inet.c, packet.c: opened at first use, in the dump's netns */
	struct sock_diag diag;
	/* inet.c: one sock_diag dump per family and protocol, read at first use */
	struct isk_snapshot *isk_snaps;
	int nr_isk_snaps;
	/* reg.c */
	struct dumped_path *paths;
	int nr_paths;
	struct img *remap_fpath; /* remap-fpath.img, made at the first ghost */
	/* unix*.c */
	struct dumped_usk *usks;
	int nr_usks, cap_usks;
	struct idx_map usk_index; /* usks[] by inode */
	struct usk_snapshot *usk_snap; /* every unix socket's sock_diag record, read once */
	struct img *sk_queues;
	int *inflight_fds; /* amber's copies of fds in flight, kept for kcmp */
	int nr_inflight_fds;
	/* pipe.c */
	uint64_t *pipes_done; /* pipe inodes whose data is saved */
	int nr_pipes_done;
	uint64_t *fifos_done;
	int nr_fifos_done;
	struct img *pipes_data, *fifo_data;
	/* tty.c */
	struct dumped_tty *ttys;
	int nr_ttys;
	struct img *tty_info;
	struct img *tty_data; /* pty.c */
	/* memfd.c */
	struct dumped_memfd *memfds;
	int nr_memfds;
	struct img *memfd_inodes;
	/* epoll.c: entries written at dump_fini, when every target is known */
	struct dumped_epoll *epolls;
	int nr_epolls;
	/* fown.c: the task's fd whose description is being written, if any */
	const struct fd_desc *cur;
	bool cur_used; /* its entry was written */
	/* file_lock.c: filelocks.img, the locks written (deduplicated) */
	struct img *file_locks;
	struct dumped_lock *locks;
	int nr_locks;
	/* mqueue.c: unlinked queues saved; amber's namespace's mqueue device (0: not read yet) */
	struct dumped_mq_ghost *mq_ghosts;
	int nr_mq_ghosts;
	dev_t own_mq_dev;
	/* tcp.c: the sockets put in repair mode, by task and fd */
	struct tcp_repaired {
		pid_t pid;
		int fd;
		bool reuse; /* SO_REUSEADDR before: leaving repair mode clears it */
	} *tcp_repaired;
	int nr_tcp_repaired;
};

/* ---- restore ---- */

struct rfile {
	FileEntry *fe;
	/*
	 * Once prepared, else -1: the file's own fd number (home_fd) when that
	 * was free in amber, else >= svc_fd_base (files_place()).
	 */
	int svc_fd;
	int nr_tasks;  /* tasks with an fd on this file */
	int home_fd;   /* its first fd number in the one task holding it; -1 if shared */
	int last_task; /* index of the last task counted */
	GhostFileEntry *ghost;
	uint32_t ghost_id; /* its ghost-file image (remap-fpath.img), maybe another file's too */
	int ghost_fd;  /* the recreated unlinked file, >= svc_fd_base */
	bool shared;   /* open before fork even if one task has it (epoll.c) */
	bool in_flight; /* carried by a queued unix message: opened by amber */
	struct rtcp *tcp; /* an established TCP socket's stream (tcp.c) */
};

/* tcp.c: a TCP connection's tcp-stream image, from load until rst_free */
struct rtcp {
	struct TcpStreamEntry *e;
	uint8_t *data;	/* the receive queue, then the send queue */
	bool repaired;	/* in repair mode, until finish */
};

/* pty.c: a pty pair whose master is in the images */
struct rpty {
	uint32_t index;
	struct TtyInfoEntry *master, *slave; /* slave NULL if no task holds one */
	uint32_t master_file;		     /* the master's file id */
	int master_fd;			     /* amber's, >= svc_fd_base, kept for the ctty */
	/*
	 * A slave saved without its master (orphan_pts_master): a new pair is
	 * made, in amber before fork, or in the root as the tree's devpts is
	 * mounted (files_pty_devpts_mounted()); master_fd is then the root's.
	 */
	bool orphan;
	/*
	 * A pair of a tree with mounts of its own: made by the root in the
	 * tree's devpts as it is mounted, its master sent back to amber
	 * (files_rst_ctx.pty_sk) for files_pty_finish().
	 */
	bool in_tree;
	struct TtyDataEntry *to_master, *to_slave; /* queued data, from tty-data.img */
};

struct rdata {
	uint32_t id; /* pipe_id, or id_for in sk-queues */
	uint32_t size;
	uint32_t len;
	uint8_t *data;
	uint32_t *rights; /* sk-queues: file ids carried (SCM_RIGHTS) */
	int nr_rights;
	bool has_ucred;	  /* sk-queues: the sender's pid, uid, gid (SCM_CREDENTIALS) */
	uint32_t ucred[3];
	uint8_t addr[28]; /* sk-queues: a UDP datagram's sender (sockaddr_in/in6) */
	uint32_t addr_len;
};

struct rtask_fds {
	pid_t pid;
	FdinfoEntry **fds;
	int nr;
};

struct rpipe {
	uint32_t pipe_id;
	int fds[2];	    /* created pipe, >= svc_fd_base; -1 once handed out */
	int any;	    /* the read end's number, to reopen it (not owned) */
	int inherited;	    /* --inherit-fd: the caller's fd standing for it (not owned), or -1 */
	bool is_fifo;
};

/* mqueue.c: an unlinked queue made again under a temporary name, until unlinked */
struct rmq_ghost {
	uint32_t id;		 /* the file carrying it */
	char name[NAME_MAX + 2]; /* "" until made */
};

struct files_rst {
	struct rfile *files; /* sorted by id */
	int nr_files;
	struct rtask_fds *tasks; /* task i of files_load() */
	int nr_tasks;
	/* pipe.c */
	struct rdata *pipe_data, *fifo_data;
	int nr_pipe_data, nr_fifo_data;
	struct rpipe *pipes;
	int nr_pipes;
	/* unix*.c */
	struct rdata *skq;
	int nr_skq;
	/* epoll.c: the epolls whose targets late() adds */
	struct rfile **epolls;
	int nr_epolls;
	int *usk_twins; /* per rfile: the far end of a half-closed socket, or -1 */
	struct idx_map usk_index; /* unix sockets' files[] by inode (unix_load) */
	int *usk_listeners; /* files[] of the unix listeners, sorted by name */
	int nr_usk_listeners;
	/* sockopts.c: new sockets' defaults, by namespace and kind */
	struct sk_dflt *sk_dflts;
	int nr_sk_dflts;
	/* memfd.c: memfd.img; restore/ makes them shared memory objects */
	MemfdInodeEntry **memfds;
	int nr_memfds;
	/* file_lock.c: filelocks.img */
	FileLockEntry **locks;
	int nr_locks;
	/* tty.c, pty.c: tty-info.img, the pty pairs */
	struct TtyInfoEntry **tty_infos;
	int nr_tty_infos;
	struct rpty *ptys;
	int nr_ptys;
	/* mqueue.c */
	struct rmq_ghost *mq_ghosts;
	int nr_mq_ghosts;
};

/* ---- the ops of one file type ---- */

struct files_type {
	FdTypes type;
	const char *name;
	/* dump */
	bool (*match)(const struct fd_desc *d);
	int (*dump)(struct files_dump_ctx *fc, const struct fd_desc *d, uint32_t *id);
	int (*dump_fini)(struct files_dump_ctx *fc); /* after the last task */
	void (*dump_free)(struct files_dump_ctx *fc);
	/* restore */
	int (*check)(struct files_rst_ctx *fc, const FileEntry *fe); /* each entry, at load */
	int (*load)(struct files_rst_ctx *fc); /* data images, after files.img */
	int (*prepare)(struct files_rst_ctx *fc); /* before fork: rfile.svc_fd */
	int (*late)(struct files_rst_ctx *fc); /* before fork, every file opened */
	int (*finish)(struct files_rst_ctx *fc); /* every task exists, none has run */
	int (*open)(struct files_rst_ctx *fc, struct rfile *rf); /* fd or -errno */
	uint32_t (*flags)(struct files_rst *fr, const FileEntry *fe);
	/* dump: must this description stay one task's (refused when another shares it)? */
	bool (*one_task)(const struct fd_desc *d);
	void (*rst_free)(struct files_rst_ctx *fc);
};

/* table.c */
extern const struct files_type *const files_types[];
extern const int files_nr_types;
const struct files_type *files_type_of(FdTypes type);

/* common.c: dump */
uint32_t files_new_id(struct files_dump_ctx *fc);
int files_write_entry(struct files_dump_ctx *fc, const FileEntry *fe);
int files_get_img(struct files_dump_ctx *fc, struct img **img, enum img_type type);
int files_getfd(const struct fd_desc *d);
/*
 * The file of @d, taken once and kept with the desc (a socket's dump asks
 * for it three times): the caller must not close it. Or -errno.
 */
int files_peekfd(const struct fd_desc *d);
void files_desc_free(struct fd_desc *d);
bool files_same_netns(pid_t pid); /* amber's network namespace? */
/* common.c: restore */
struct rfile *files_rfile(struct files_rst *fr, uint32_t id);
struct rdata *files_rdata(struct rdata *arr, int nr, uint32_t id);
int files_load_data(struct files_rst_ctx *fc, enum img_type type, struct rdata **arr, int *nr);
void files_free_data(struct rdata *arr, int nr);
/*
 * Sorts *@arrp by id, entries of one id kept in their order (a new array;
 * 0 or -ENOMEM): sk-queues, so that files_skq_of() finds a socket's
 * packets by binary search, not by a scan of every packet per socket.
 */
int files_sort_data(struct rdata **arrp, int nr);
/* The sk-queues packets of file @id (sorted), *@nr of them, in order; or NULL. */
struct rdata *files_skq_of(struct files_rst *fr, uint32_t id, int *nr);
/* "files.img: file %u (type %d) is malformed" unless @ok and @sub is its id. */
int files_check_sub(const FileEntry *fe, bool ok, uint32_t sub);
int files_move_high(int fd, int base);
/*
 * prepare() of a type whose every file amber makes before fork, one at a
 * time: @make gives @rf's new fd or -errno; kept above the service base
 * (rf->svc_fd). 0 or the first -errno.
 */
int files_prepare_each(struct files_rst_ctx *fc, FdTypes type,
		       int (*make)(struct files_rst_ctx *fc, struct rfile *rf));
/*
 * Where a file amber opens before fork is kept (rf->svc_fd): at its own fd
 * number if only one task holds it and that number is free in amber, so
 * the task finds it in place; else above the service base. @fd is closed
 * or returned; the new fd or -errno.
 */
int files_place(struct files_rst_ctx *fc, struct rfile *rf, int fd);
uint32_t files_open_flags(uint32_t flags);
void files_close_fd(int *fd);

/* reg.c, used by pipe.c (a FIFO's path) */
int files_dump_reg_path(struct files_dump_ctx *fc, const char *path, const char *proc_path,
			const struct stat *st, uint32_t flags, uint64_t pos, int mnt_id,
			uint32_t *id);
/* memfd.c, used by reg.c (the file of a memfd mapping) */
bool files_is_memfd(const char *path);
int files_dump_memfd(struct files_dump_ctx *fc, const char *path, const char *proc_path,
		     const struct stat *st, uint32_t flags, uint64_t pos, uint32_t *id);
int files_open_memfd(struct files_rst_ctx *fc, struct rfile *rf, uint32_t flags, uint64_t pos);

extern const struct files_type files_reg_type, files_pipe_type, files_fifo_type,
	files_unix_type, files_tty_type, files_memfd_type;
extern const struct files_type files_inet_type, files_netlink_type, files_packet_type;
extern const struct files_type files_pidfd_type; /* pidfd.c */
extern const struct files_type files_mqueue_type; /* mqueue.c */
/* mqueue.c: the unlinked queues' temporary names unlinked, every description open */
int files_mq_unlink_ghosts(struct files_rst_ctx *fc);
/*
 * pipe.c: the FIFOs' guard fds, made with their data by path; with
 * defer_paths by files_open_deferred() in the root, among the tree's mounts.
 */
int files_fifo_make(struct files_rst_ctx *fc);
/* epoll.c: in the root, the targets made in the tree's mounts (defer_paths). */
int files_epoll_add_in_tree(struct files_rst_ctx *fc);

/* file_lock.c: held locks (files.c calls these; locks are not a file type) */
struct dumped_lock;
int files_dump_locks(struct files_dump_ctx *fc, const struct fd_desc *d, uint32_t file_id);
int files_locks_dump_fini(struct files_dump_ctx *fc);
void files_locks_dump_free(struct files_dump_ctx *fc);
int files_locks_load(struct files_rst_ctx *fc); /* after every fdinfo image */
void files_locks_rst_free(struct files_rst *fr);

/* sockopts.c: SOL_SOCKET options of any socket (sk_opts_entry) */
struct files_sk_opts {
	SkOptsEntry e;
	char dev[16];	  /* SO_BINDTODEVICE (IFNAMSIZ) */
	uint64_t *filter; /* SO_GET_FILTER, malloc'ed */
};
/*
 * What a socket's sock_diag record told already (inet.c), so its dump
 * asks getsockopt() less: a server of 10,000 connections spends a fourth
 * of its dump there. has_*: the kernel sent that attribute.
 */
struct sk_known {
	bool has_mem, has_mark, has_tos, has_ipv4_tos, has_sockopt, has_tcp_info;
	uint32_t sndbuf, rcvbuf; /* SK_MEMINFO_SNDBUF/RCVBUF: SO_SNDBUF/SO_RCVBUF */
	uint32_t mark;
	uint8_t tos; /* IP_TOS, or IPV6_TCLASS of an AF_INET6 socket */
	uint8_t ipv4_tos; /* an AF_INET6 socket's IP_TOS */
	bool freebind;
	uint8_t tcpi_options, snd_wscale, rcv_wscale; /* TCP_INFO's */
};
/* @k: what sock_diag told of @sk, or NULL */
int files_sk_opts_dump(int sk, const struct sk_known *k, struct files_sk_opts *so);
void files_sk_opts_free(struct files_sk_opts *so);
bool files_sk_opts_ok(const SkOptsEntry *o); /* at load */
/*
 * What a new socket of one kind (network namespace, family, type,
 * protocol) reports, read once from a template socket: a saved option of
 * that value needs no setsockopt() at restore. Cached in files_rst.
 */
#define SK_DFLT_MAX 32
struct sk_dflt {
	uint64_t netns; /* SO_NETNS_COOKIE */
	int family, type, proto;
	int nr; /* options the template reported; any other is unknown */
	struct sk_dflt_val {
		int level, opt, val;
	} v[SK_DFLT_MAX];
};
/*
 * @sk: the new socket, whose namespace is asked. NULL where unknown (no
 * SO_NETNS_COOKIE): set every option as without. Valid until the next call.
 */
const struct sk_dflt *files_sk_dflt(struct files_rst *fr, int sk, int family, int type,
				    int proto);
/* Before fork: the kinds of the image's inet and unix sockets, for every task. */
void files_sk_dflt_prefill(struct files_rst *fr);
bool files_sk_dflt_int(const struct sk_dflt *d, int level, int opt, int *v);
/* @v differs from @d's (unknown: from 0) */
bool files_sk_dflt_differs(const struct sk_dflt *d, int level, int opt, int v);
/* @d: files_sk_dflt()'s, or NULL; @what and @id name the socket in errors. */
int files_sk_opts_restore(int sk, const SkOptsEntry *o, const struct sk_dflt *d,
			  const char *what, uint32_t id);

/* inet_queue.c: datagrams queued in a UDP socket (inet.c calls these) */
struct InetSkEntry;
int files_udp_queue_dump(struct files_dump_ctx *fc, int sk, const struct fd_desc *d,
			 uint32_t id);
bool files_udp_queue_ok(const struct rdata *q, uint32_t family); /* at load */
/* Queues socket @id's datagrams in @sk, bound and not connected yet. */
int files_udp_queue_restore(struct files_rst *fr, int sk, const struct InetSkEntry *e,
			    uint32_t id);

/* tcp.c: the stream of an established TCP socket (inet.c calls these) */
struct sockaddr;
const char *files_tcp_state_name(int state);
int files_tcp_state(int sk); /* tcpi_state, or -errno */
/* @opts: the socket's TCP options, already read (nodelay and cork go in the stream too) */
int files_tcp_dump(struct files_dump_ctx *fc, int sk, const struct fd_desc *d, uint32_t ino,
		   int state, const TcpOptsEntry *opts, const struct sk_known *k);
void files_tcp_dump_free(struct files_dump *st);
void files_tcp_dump_resume(struct files_dump *st); /* files_dump_resume() */
int files_tcp_load(struct files_rst_ctx *fc, struct rfile *rf); /* rf->tcp */
int files_tcp_restore(int sk, const InetSkEntry *ie, struct rtcp *t,
		      const struct sockaddr *src, unsigned sl,
		      const struct sockaddr *dst, unsigned dl);
int files_tcp_finish(int sk, const InetSkEntry *ie, struct rtcp *t);
void files_tcp_free(struct rfile *rf);

/* pty.c: pty pairs, for tty.c */
struct TtyInfoEntry;
struct TermiosEntry;
struct termios;
/* c_cc entries the kernel's termios has (glibc's NCCS is larger); CRIU's count */
#define TTY_NCC 19
/* @t into @te, whose c_cc is @cc (TTY_NCC entries) */
void files_termios_to_entry(const struct termios *t, struct TermiosEntry *te, uint32_t *cc);
void files_entry_to_termios(const struct TermiosEntry *te, struct termios *t);
struct winsize;
void files_winsize_to_entry(const struct winsize *ws, WinsizeEntry *we);
void files_entry_to_winsize(const WinsizeEntry *we, struct winsize *ws);
/* What every terminal's tty_info_entry carries, with the storage it points into. */
struct files_tty_settings {
	TermiosEntry termios, locked;
	WinsizeEntry winsize;
	uint32_t cc[TTY_NCC], lcc[TTY_NCC];
};
/*
 * Fills @ti with the device of @d (rdev, dev, uid, gid) and @fd's termios,
 * locked termios and window size, kept in @s. 0, or -errno logged.
 */
int files_tty_settings_dump(const struct fd_desc *d, int fd, TtyInfoEntry *ti,
			    struct files_tty_settings *s);
/* Only the device of @d in @ti (rdev, dev, uid, gid). */
void files_tty_info_device(TtyInfoEntry *ti, const struct fd_desc *d);
bool files_is_ptm(dev_t rdev);
bool files_is_pts(dev_t rdev);
int files_pty_dump(struct files_dump_ctx *fc, const struct fd_desc *d, uint32_t *info_id);
int files_pty_dump_fini(struct files_dump_ctx *fc);
void files_pty_dump_resume(struct files_dump_ctx *fc);
void files_pty_dump_free(struct files_dump *st);
int files_pty_load(struct files_rst_ctx *fc);
struct TtyInfoEntry *files_tty_info(struct files_rst *fr, uint32_t id);
struct rpty *files_rpty_of(struct files_rst *fr, const FileEntry *fe);
/* The pair made anew for a slave whose master was outside (orphan_pts), or NULL. */
struct rpty *files_rpty_orphan(struct files_rst *fr, const FileEntry *fe);
int files_pty_prepare(struct files_rst_ctx *fc);
int files_pty_finish(struct files_rst_ctx *fc);
int files_pty_restore_ctty(struct files_rst_ctx *fc, pid_t pid);
void files_pty_rst_free(struct files_rst *fr);

/* tty_dev.c: the console and virtual terminals, for tty.c and pty.c */
bool files_tty_is_console(dev_t rdev);
bool files_tty_is_vt(dev_t rdev);
/* Opened again at restore (the console; a VT without --shell-job), not the shell's. */
bool files_tty_reopened(const struct TtyInfoEntry *ti, bool shell_job);
int files_tty_dev_dump(struct files_dump_ctx *fc, const struct fd_desc *d, uint32_t *info_id);
/* At load: the device, its path here, its session's leader in the images. */
int files_tty_dev_check(struct files_rst_ctx *fc, const FileEntry *fe,
			const struct TtyInfoEntry *ti);
int files_tty_dev_prepare(struct files_rst_ctx *fc, struct rfile *rf,
			  const struct TtyInfoEntry *ti);
int files_tty_dev_restore_ctty(struct files_rst_ctx *fc, pid_t pid);

/* fown.c: the file owner and its signal, for every type (found by name), fdinfo fields */
int files_dump_fown(const struct fd_desc *d, int fd, FownEntry *fown);
int files_fill_fown(struct files_dump_ctx *fc, const FileEntry *fe); /* files_write_entry() */
int files_check_fown(const FileEntry *fe, const FownEntry *fown);
int files_check_owner(struct files_rst_ctx *fc, const FileEntry *fe); /* each entry, at load */
int files_restore_fown(int fd, const FileEntry *fe); /* in the task, once the fd is in place */
const char *files_fdinfo_field(const char *buf, const char *key);
/* anonymous-inode files: eventfd.c signalfd.c timerfd.c epoll.c inotify.c */
extern const struct files_type files_eventfd_type, files_signalfd_type, files_timerfd_type,
	files_epoll_type, files_inotify_type, files_fanotify_type;
/* inotify.c, used by fanotify.c: an inode's path through its file handle */
int files_fhandle_path(uint32_t sdev, uint32_t bytes, uint32_t type, const void *handle,
		       uint64_t ino, char *path, size_t len);

#endif
