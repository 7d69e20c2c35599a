/* SPDX-License-Identifier: MIT */
#ifndef AMBER_LAZY_SOURCE_H
#define AMBER_LAZY_SOURCE_H

/*
 * Where the lazy-pages daemon gets page bytes. The daemon knows from the
 * local pagemaps which pages exist and where (lazy_mm.c); a source only
 * hands out bytes:
 *
 *   local   pages-N.img of the image directory, mapped read-only: the
 *           returned pointer is into the file, no copy (lazy_source.c)
 *   remote  a page server (PS_IOV_GET by pid and address): fills a buffer
 *           it owns; not written yet (issue 5, item 2)
 *
 * The daemon checks pagemap entries' checksums itself (all of them at
 * start for local images; any entry not yet checked on its first use),
 * so a source needs no checks of its own.
 */
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct lazy_source;
struct rst_ctx;

struct lazy_source_ops {
	/*
	 * Points *data at @len bytes of task @pid's pages: image address
	 * @vaddr, byte @off of its pages image. Valid until the next get().
	 */
	int (*get)(struct lazy_source *s, pid_t pid, uint64_t vaddr, uint64_t off, size_t len,
		   const void **data);
	void (*close)(struct lazy_source *s);
};

struct lazy_source {
	const struct lazy_source_ops *ops;
};

/* Pages from the images of @rc (loaded by rst_load()). */
struct lazy_source *lazy_source_local(struct rst_ctx *rc);

#endif
