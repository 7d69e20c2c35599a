/* SPDX-License-Identifier: MIT */
#ifndef AMBER_PAGE_WRITER_H
#define AMBER_PAGE_WRITER_H

/*
 * Writes page data to a pages image from a second thread, so that copying
 * the next piece out of the frozen task and checksumming it overlaps with
 * writing the last one (each takes about as long as the other).
 *
 *   dumper:  buf = pw_get(); fill buf; pw_put(len); ...; pw_close()
 *   thread:  takes the filled buffers in order and img_write_raw()s them
 *
 * A ring of PW_NR_BUFS buffers of PW_BUF_BYTES sits between the two. The
 * dumper is the faster side: when it finds the ring full it sleeps until
 * the ring is half empty, not until one buffer is free, so that it wakes
 * (a cross-CPU wakeup, expensive in a VM) once per PW_NR_BUFS / 2 pieces.
 * The pieces land in the image in the order they were put. A write error
 * stops the thread; the dumper sees it from pw_get() (NULL) or pw_close().
 */
#include <stddef.h>

#define PW_BUF_BYTES (256 * 1024)
#define PW_NR_BUFS   16

struct img;
struct page_writer;

/* Starts the thread that writes to @pages (which stays the caller's). */
int pw_open(struct page_writer **pw, struct img *pages);
/* The next free buffer of PW_BUF_BYTES; NULL once a write has failed. */
void *pw_get(struct page_writer *pw);
/* Queues the first @len bytes of the buffer pw_get() returned last. */
void pw_put(struct page_writer *pw, size_t len);
/* Writes what is queued, stops the thread, frees @pw; 0 or the first error. */
int pw_close(struct page_writer *pw);

#endif
