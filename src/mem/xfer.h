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
 *       add_fill(vaddr, nr, fill)  the same, the caller's fill() copying
 *                          the data straight into the backend's buffers
 *       hole(vaddr, nr)    a run with no data here (PE_PARENT / PE_LAZY)
 *
 * Backends:
 *   local   pagemap-<pid>.img / pagemap-shmem-<id>.img with a head naming
 *           pages-<n>.img, n from the target's counter; one entry per at
 *           most XFER_ENTRY_PAGES pages, each with its checksum (field 1000,
 *           seed = the entry's vaddr); files 0600. A second thread
 *           writes the pages file (page_writer.h) while the next piece
 *           is filled and checksummed, so each piece is copied in once,
 *           read back from the cache and written from there.
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
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

struct ps_conn;
struct xfer;
struct xfer_target;

enum xfer_kind {
	XFER_TASK,
	XFER_SHMEM,
};

/*
 * One checksummed pagemap entry covers at most this many pages (256 KiB).
 * Post-copy fetches and checks a whole entry before any page of it is
 * delivered, so this bounds a remote fault (2 MiB entries: 1.9 ms median,
 * 256 KiB: 0.2 ms here); dump and restore take the same time either way.
 */
#define XFER_ENTRY_PAGES 64

/* Pages-file numbers start after *next_pages_id, which is advanced. */
struct xfer_target *xfer_target_local(int dirfd, uint32_t *next_pages_id);
/*
 * Takes @c over; xfer_target_fini sends CLOSE and waits for the ack. With
 * @copy_dirfd >= 0, what each task pagemap said (no data) is also kept
 * there as sent-pagemap-<pid>.img, which the next incremental dump
 * reads as its parent's pagemap (mem_inc.h).
 */
struct xfer_target *xfer_target_ps(struct ps_conn *c, int copy_dirfd);
/* Finishes (page server: all data acknowledged) and frees. */
int xfer_target_fini(struct xfer_target *t);
/* Frees without finishing: the remote side sees the transfer as failed. */
void xfer_target_abort(struct xfer_target *t);

/*
 * 1 if the far side keeps a parent image of that pagemap (local: the dump
 * decides from its --prev-images-dir, so 1), 0 if not, or -errno. Asked
 * before an incremental scan, so a dump fails before the tracker moves.
 */
int xfer_has_parent(struct xfer_target *t, enum xfer_kind kind, unsigned long id);
int xfer_open(struct xfer_target *t, enum xfer_kind kind, unsigned long id, struct xfer **out);
/* Pages at [vaddr, vaddr + total iov length), page-aligned, ascending. */
int xfer_add(struct xfer *x, uint64_t vaddr, const struct iovec *iov, int iovcnt);
int xfer_hole(struct xfer *x, uint64_t vaddr, uint64_t nr_pages, uint32_t pe_flags);
/*
 * Puts the @len bytes that start @off bytes into the run in @buf (both
 * multiples of the page size); 0 or -errno, having said why.
 */
typedef int xfer_fill_fn(void *arg, void *buf, uint64_t off, size_t len);
/*
 * Like xfer_add(), without a copy: the backend calls @fill for each piece
 * of the run, in order, into a buffer of its own.
 */
int xfer_add_fill(struct xfer *x, uint64_t vaddr, uint64_t nr_pages, xfer_fill_fn *fill, void *arg);
/* Flushes (the local backend: waits for its writes) and frees @x (NULL is fine). */
int xfer_close(struct xfer *x);

static inline int xfer_add_buf(struct xfer *x, uint64_t vaddr, uint64_t nr_pages, const void *buf)
{
	struct iovec iov = {(void *)buf, nr_pages * 4096};

	return xfer_add(x, vaddr, &iov, 1);
}

#endif
