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
 *   lazy_mm       page state of one address space (one uffd): lazy/mm.h
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

#endif
