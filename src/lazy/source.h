/* SPDX-License-Identifier: MIT */
#ifndef AMBER_LAZY_SOURCE_H
#define AMBER_LAZY_SOURCE_H

/*
 * Where the lazy-pages daemon gets page bytes. The daemon knows from the
 * local pagemaps which pages exist and where (lazy/mm.c); a source only
 * hands out bytes:
 *
 *   local   pages-N.img of the image directory and of its parents (an
 *           incremental chain), mapped read-only: the returned pointer is
 *           into the file, no copy (lazy_source.c)
 *   remote  a page server (PS_IOV_GET by pid and address, or by shmid
 *           and offset): fills a buffer it owns (lazy_source_remote.c)
 *
 * The daemon checks pagemap entries' checksums itself (all of them at
 * start for local images; any entry not yet checked on its first use,
 * fetched whole), so a source needs no checks of its own. A source that
 * has lost its connection says -ENOTCONN: the daemon then exits and the
 * keeper keeps the faults waiting for `amber lazy-pages --resume`.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct lazy_source;
struct rst_ctx;

struct lazy_source_ops {
	/*
	 * Points *data at @len bytes of task @pid's pages: image address
	 * @vaddr, byte @off of the pages image of layer @layer of its chain
	 * (0: the dump itself; remote: always 0). Valid until the next get().
	 */
	int (*get)(struct lazy_source *s, pid_t pid, int layer, uint64_t vaddr, uint64_t off,
		   size_t len, const void **data);
	/* Remote only (local shared memory is read by the restore itself). */
	int (*get_shmem)(struct lazy_source *s, uint64_t shmid, uint64_t off, size_t len,
			 const void **data);
	/* @done: every page delivered (a page server may end its session). */
	void (*close)(struct lazy_source *s, bool done);
};

struct lazy_source {
	const struct lazy_source_ops *ops;
	bool threadsafe; /* get() from two threads at once (local: pointers only) */
};

/* Pages from the images of @rc (loaded by rst_load()). */
struct lazy_source *lazy_source_local(struct rst_ctx *rc);
/* Pages from `amber page-server --lazy-pages` at @o; NULL (logged, errno set) on failure. */
struct ps_client_opts;
struct lazy_source *lazy_source_remote(const struct ps_client_opts *o);

#endif
