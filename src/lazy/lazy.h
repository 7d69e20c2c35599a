/* SPDX-License-Identifier: MIT */
#ifndef AMBER_LAZY_H
#define AMBER_LAZY_H

/*
 * Lazy restore: `amber restore --lazy-pages` leaves private anonymous
 * memory to a userfaultfd, and `amber lazy-pages` fills it on demand.
 *
 *   lazy_keeper   holds the listening socket and a dup of every uffd, and
 *                 journals what the daemon learns (lazy_proto.h), so a
 *                 killed daemon leaves threads waiting, never reading zeros
 *   lazy_daemon   the fault loop: epoll over every uffd, UFFDIO_COPY for
 *                 pages of the images, UFFDIO_ZEROPAGE for holes, events,
 *                 background prefetch between faults
 *   lazy_mm       page state of one address space (one uffd):
 *
 *     lazy_mm { id, uffd, img (the task whose images hold the pages) }
 *       areas[] sorted by start, never overlapping:
 *         lazy_area { [start, end) now, src: image address of start,
 *                     st[page]: PENDING (in the image, not yet in),
 *                               ZERO (hole, or MADV_DONTNEED'ed),
 *                               DONE (delivered, or no longer ours) }
 *     A fork copies the parent's areas; mremap moves areas (src stays);
 *     munmap drops them. The mm is finished when nothing is PENDING.
 *
 *   lazy_source   where page bytes come from (local images, or a page
 *                 server for post-copy), one interface
 *   lazy_eager    post-copy: fetches what the restore reads eagerly (file,
 *                 shared, locked memory) into memfds the keeper hands over
 *
 * What is lazy is decided at restore (vma_can_be_lazy()), not at dump:
 * the images are ordinary PE_PRESENT images, so any dump can be restored
 * either way, and several times (the daemon only reads them).
 */
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "restore/lazy_proto.h"
#include "pageserver/client.h"

#define LAZY_SOCKET_NAME "lazy-pages.socket"

struct lazy_opts {
	const char *dir;
	const char *socket; /* NULL: DIR/lazy-pages.socket */
	bool resume;	    /* take over from a killed daemon's keeper */
	bool no_prefetch;   /* serve faults only (for measurements) */
	/*
	 * --page-server: post-copy. DIR holds the images without the pages
	 * files; pages come from `amber page-server --lazy-pages` at ps.
	 */
	bool page_server;
	struct ps_client_opts ps;
};

int lazy_daemon_run(const struct lazy_opts *o);

/* lazy_client.c: shared by restore, keeper and daemon. */
struct sockaddr_un;
struct rst_ctx;
int lazy_socket_path(const char *dir, const char *path, struct sockaddr_un *sa);
uint64_t lazy_uffd_features(void);
int lazy_connect(const struct sockaddr_un *sa);
/* Sends @m (magic set here) with @pass_fd unless it is -1. */
int lazy_send(int fd, struct lazy_msg *m, int pass_fd);
/* 1: a message in @m (LAZY_MSG_MAX bytes), fd in *got_fd or -1; 0: EOF; -errno. */
int lazy_recv(int fd, struct lazy_msg *m, int *got_fd);
/*
 * The restore's two steps: before its images are loaded, connect and take
 * the pages files the daemon hands over (rc->pages_src, if any); once they
 * are loaded and checked, introduce the connection as a restore.
 */
int lazy_restore_connect(struct rst_ctx *rc);
int lazy_restore_hello(struct rst_ctx *rc);
/* Closes what lazy_restore_connect() received (the loaded layers hold dups). */
void lazy_restore_put_pages(struct rst_ctx *rc);

/*
 * lazy_keeper.c: forks the keeper listening on @listen_fd (bound to @path),
 * handing @pages to every restore that asks; its pid or -errno.
 */
struct pm_pages_fd;
pid_t lazy_keeper_start(int listen_fd, const char *path, const struct pm_pages_fd *pages,
			int nr_pages);

/* --- lazy_mm.c -------------------------------------------------------- */
enum lazy_page_state { PG_PENDING = 0, PG_ZERO = 1, PG_DONE = 2 };

struct lazy_area {
	uint64_t start, end;
	uint64_t src;
	uint8_t *st;
};

struct rst_task;

struct lazy_mm {
	uint32_t id;
	int uffd; /* -1 once finished or gone */
	struct rst_task *img;
	int img_idx;
	struct lazy_area *areas;
	int nr_areas;
	uint64_t nr_pending;
	/* prefetch cursor: area index and page in it */
	int cur_area;
	uint64_t cur_page;
	/* faults that got -EAGAIN (an event was pending), retried after events */
	uint64_t *retry;
	int nr_retry, max_retry;
	/*
	 * The daemon's two threads (lazy_daemon.h): no event may be read
	 * while a prefetch copy is in flight, and no copy may start between
	 * reading an event and applying it. __atomic, seq_cst.
	 */
	int reading; /* the main thread reads, or applies what it read */
	int copying; /* the prefetcher is in a UFFDIO_COPY */
};

/* A new mm from an LZ_TASK: every page of @ranges is ZERO but what @img's pagemap has. */
struct lazy_mm *lazy_mm_new(uint32_t id, struct rst_task *img, int img_idx,
			    const struct lazy_range *ranges, uint32_t nr);
struct lazy_mm *lazy_mm_clone(const struct lazy_mm *parent, uint32_t id);
void lazy_mm_free(struct lazy_mm *mm);
/* The area holding @addr, or NULL. */
struct lazy_area *lazy_mm_find(struct lazy_mm *mm, uint64_t addr);
int lazy_mm_remap(struct lazy_mm *mm, uint64_t from, uint64_t to, uint64_t len);
int lazy_mm_unmap(struct lazy_mm *mm, uint64_t start, uint64_t end);
void lazy_mm_remove(struct lazy_mm *mm, uint64_t start, uint64_t end);
/* Marks [addr, addr + n pages) of @a DONE, counting PENDING ones. */
void lazy_area_done(struct lazy_mm *mm, struct lazy_area *a, uint64_t addr, uint64_t n);

#endif
