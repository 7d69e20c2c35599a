/* SPDX-License-Identifier: MIT */
#ifndef AMBER_XFER_H
#define AMBER_XFER_H

/*
 * Page transfer: where dumped pages go.
 *
 *   xfer_target            one per dump: a directory, or a page server
 *     xfer                 one open pagemap: a task's (XFER_TASK, id = pid)
 *                          or a shmem object's (XFER_SHMEM, id = shmid)
 *       add(vaddr, pages)  a run of present pages, in ascending order
 *       hole(vaddr, nr)    a run with no data here (PE_PARENT / PE_LAZY)
 *
 * Backends:
 *   local   pagemap-<pid>.img / pagemap-shmem-<id>.img with a head naming
 *           pages-<n>.img, n from the target's counter; one entry per at
 *           most XFER_ENTRY_PAGES pages, each with its checksum (field 1000,
 *           seed = the entry's vaddr); files 0600.
 *   ps      the CRIU page-server protocol on a connected ps_conn: OPEN2 per
 *           pagemap, ADD_F + data per run, CLOSE at the end (ps_proto.h).
 *           The server writes the images with the local backend, so both
 *           give the same files (except the pages-<n> numbers).
 *
 * A target has at most one xfer open at a time: the page-server protocol
 * has one current pagemap, and reopening one truncates it (-EBUSY).
 *
 * Every function returns 0 or -errno; after an error the dump fails.
 */
#include <stdint.h>
#include <sys/uio.h>

struct ps_conn;
struct xfer;
struct xfer_target;

enum xfer_kind {
	XFER_TASK,
	XFER_SHMEM,
};

/* One checksummed pagemap entry covers at most this many pages. */
#define XFER_ENTRY_PAGES 512

/* Pages-file numbers start after *next_pages_id, which is advanced. */
struct xfer_target *xfer_target_local(int dirfd, uint32_t *next_pages_id);
/* Takes @c over; xfer_target_fini sends CLOSE and waits for the ack. */
struct xfer_target *xfer_target_ps(struct ps_conn *c);
/* Finishes (page server: all data acknowledged) and frees. */
int xfer_target_fini(struct xfer_target *t);
/* Frees without finishing: the remote side sees the transfer as failed. */
void xfer_target_abort(struct xfer_target *t);

int xfer_open(struct xfer_target *t, enum xfer_kind kind, unsigned long id, struct xfer **out);
/* Pages at [vaddr, vaddr + total iov length), page-aligned, ascending. */
int xfer_add(struct xfer *x, uint64_t vaddr, const struct iovec *iov, int iovcnt);
int xfer_hole(struct xfer *x, uint64_t vaddr, uint64_t nr_pages, uint32_t pe_flags);
/* Flushes and frees @x (NULL is fine). */
int xfer_close(struct xfer *x);

static inline int xfer_add_buf(struct xfer *x, uint64_t vaddr, uint64_t nr_pages, const void *buf)
{
	struct iovec iov = {(void *)buf, nr_pages * 4096};

	return xfer_add(x, vaddr, &iov, 1);
}

#endif
