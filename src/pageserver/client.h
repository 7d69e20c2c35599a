/* SPDX-License-Identifier: MIT */
#ifndef AMBER_PS_CLIENT_H
#define AMBER_PS_CLIENT_H

/*
 * The lazy side of the page server: fetch pages of a dump served by
 * `amber page-server --lazy-pages` (or CRIU's lazy page server) with
 * PS_IOV_GET. One connection, synchronous, one request in flight; not
 * thread-safe (give each thread its own client, or serialize).
 *
 *   c = ps_client_connect(&opts);           connects, TLS and/or token
 *   ps_client_get_pages(c, pid, va, n, buf) 0 / -ENOENT / -errno
 *   ps_client_get_shmem_pages(c, shmid, off, n, buf)   the same, for shared
 *                                           anonymous memory and memfds
 *   ps_client_close(c);                     CLOSE: the server then exits
 */
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

struct ps_client;

/* Extensible: set .size = sizeof(struct ps_client_opts); unset fields zero. */
struct ps_client_opts {
	size_t size;
	const char *address;
	int port;
	const char *token_file; /* shared-secret auth, see pageserver/conn.h */
	bool tls;		/* TLS, verifying the server against tls_cacert */
	const char *tls_cacert; /* NULL: the system's CAs */
	const char *tls_cert;	/* client certificate, for a server that wants one */
	const char *tls_key;
	bool tls_no_cn_verify; /* don't match the address against the certificate */
};

/* NULL on failure, errno set (EACCES: authentication refused). */
struct ps_client *ps_client_connect(const struct ps_client_opts *o);
/*
 * A client over @conn, connected and secured already (ps_client_connect's
 * second half; test/fuzz hands it a socketpair). Takes @conn over.
 */
struct ps_conn;
struct ps_client *ps_client_adopt(struct ps_conn *conn);

/*
 * Reads @nr_pages pages of task @pid from @vaddr (page-aligned) into @buf.
 *   0        every page was in the dump: @buf holds them.
 *   -ENOENT  at least one page is not in the dump (never touched, the zero
 *            page, or file-backed and clean): those pages are zero-filled
 *            in @buf, the others filled. A lazy daemon should resolve a
 *            missing page with UFFDIO_ZEROPAGE; ask one page at a time to
 *            know which ones.
 *   -ESRCH   @pid is not in the dump; -EINVAL/-ERANGE/-E2BIG a bad request
 *   -EBADMSG the server found the image corrupt (checksum)
 *   -EPROTO, -ECONNRESET, -EIO: the connection is unusable; close it.
 */
int ps_client_get_pages(struct ps_client *c, int pid, uint64_t vaddr, unsigned nr_pages, void *buf);

/*
 * Reads @nr_pages pages of the shmem object @shmid (shared anonymous
 * memory or a memfd: pagemap-shmem-<shmid>.img) from the page-aligned
 * offset @off into @buf. The same returns as ps_client_get_pages, with
 * -ESRCH for a shmid that is not in the dump, and -ENOENT (zero-filled)
 * for pages the object did not hold, past its end too.
 * Sent as a GET with amber's PS_GET_SHMEM flag (pageserver/proto.h): ask only a
 * server that knows it. CRIU's, and amber's before the flag, ignore GET
 * flags and would take @shmid for a pid.
 */
int ps_client_get_shmem_pages(struct ps_client *c, uint64_t shmid, uint64_t off, unsigned nr_pages,
			      void *buf);

/* Sends CLOSE (the server's session ends) and frees @c. NULL is fine. */
void ps_client_close(struct ps_client *c);
/*
 * Drops the connection without CLOSE and frees @c: a lazy server keeps
 * listening (a resumed lazy-pages daemon reconnects). NULL is fine.
 */
void ps_client_hangup(struct ps_client *c);

#endif
