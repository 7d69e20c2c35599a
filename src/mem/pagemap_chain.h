/* SPDX-License-Identifier: MIT */
#ifndef AMBER_PAGEMAP_CHAIN_H
#define AMBER_PAGEMAP_CHAIN_H

/*
 * A task's pages through a chain of image directories (incremental dumps).
 *
 *   DIR/pagemap-PID.img          layer 0: PE_PRESENT data here, PE_PARENT
 *   DIR/parent/pagemap-PID.img   layer 1: ... which resolves here, or
 *   DIR/parent/parent/...        further up, any depth
 *
 * Restore lays the layers down oldest first, each used entry whole (so its
 * checksum is verified as it lands), newer data over older; then the pages
 * that were read but are not in layer 0's pagemap at all (freed since the
 * older dump) are zapped back with MADV_DONTNEED. An entry that no longer
 * fits in the VMAs is checked here, in userspace, and only its mapped part
 * is read by the restorer.
 */
#include <stdbool.h>
#include <stdint.h>

#include "mm.pb-c.h"
#include "pagemap.pb-c.h"

#include "base/csum.h"

#define PM_MAX_CHAIN 64

/*
 * The checksum of @pe's pages and which sum it is (AMBER_CSUM_V*), 0 if it
 * has none: amber_csum2 when present, else an older build's amber_csum.
 */
static inline unsigned int pagemap_entry_csum(const PagemapEntry *pe, uint64_t *csum)
{
	if (pe->has_amber_csum2) {
		*csum = pe->amber_csum2;
		return AMBER_CSUM_V2;
	}
	*csum = pe->amber_csum;
	return pe->has_amber_csum ? AMBER_CSUM_V1 : 0;
}

/* Sets @pe's checksum field for @ver (0: none), and clears the other. */
static inline void pagemap_entry_set_csum(PagemapEntry *pe, uint64_t csum, unsigned int ver)
{
	pe->has_amber_csum = ver == AMBER_CSUM_V1;
	pe->amber_csum = pe->has_amber_csum ? csum : 0;
	pe->has_amber_csum2 = ver == AMBER_CSUM_V2;
	pe->amber_csum2 = pe->has_amber_csum2 ? csum : 0;
}

/* One pagemap entry as loaded; off is its byte offset in the pages file. */
struct pm_ent {
	uint64_t vaddr;
	uint32_t nr_pages;
	/* PE_PRESENT, PE_PARENT, or PE_LAZY: in no file, at the dump's page server */
	uint32_t flags;
	uint64_t off;
	uint64_t csum;
	uint8_t csum_ver; /* AMBER_CSUM_V1, _V2, 0: none */
	bool used;
};

struct pm_layer {
	int pages_fd; /* pages-<id>.img of this layer, -1 if it has no data */
	uint32_t pages_id;
	uint64_t pages_size; /* bytes its PE_PRESENT entries take in the pages file */
	struct pm_ent *ents;
	int nr;
};

/* A run of pages for the restorer, from layer @layer's pages file. */
struct rst_pages {
	uint64_t vaddr;
	uint32_t nr_pages;
	uint64_t off; /* byte offset in the pages image */
	uint64_t csum;
	uint8_t csum_ver; /* AMBER_CSUM_V1, _V2, 0: none */
	int layer;
};

struct pm_range {
	uint64_t start, end;
};

struct pm_chain {
	struct pm_layer layers[PM_MAX_CHAIN]; /* [0] is the dump itself */
	int nr_layers;
	struct rst_pages *runs; /* oldest layer first: later runs overwrite */
	int nr_runs;
	struct pm_range *zaps;  /* read but not present: MADV_DONTNEED */
	int nr_zaps;
	/*
	 * The same pages for the lazy-pages daemon, which delivers each page
	 * once: every page of layer 0's pagemap from the newest layer that
	 * holds it, sorted and disjoint. A run that is only part of an entry
	 * has no checksum here (the daemon checks whole entries at start).
	 */
	struct rst_pages *lazy;
	int nr_lazy;
};

/*
 * Where the pages files of the top layer are, if not in the image
 * directory. Post-copy migration ships the images without pages-N.img:
 * the lazy-pages daemon loads them with @none (pages_fd stays -1), fetches
 * what the restore needs eagerly from the page server into memfds, and the
 * restore loads with those memfds in @fds (checked like files). NULL: the
 * directory.
 */
struct pm_pages_fd {
	uint32_t id;
	int fd;
};

struct pm_pages_src {
	bool none;
	const struct pm_pages_fd *fds;
	int nr_fds;
};

/*
 * Loads pagemap-<pid>.img from @dirfd and, while PE_PARENT entries need
 * it, from each "parent" directory up the chain; checks every layer
 * against its pages file and every PE_PARENT range against the layer
 * above; builds runs and zaps. 0 or -errno (with a message).
 */
int pm_chain_load(struct pm_chain *pc, int dirfd, int pid, const MmEntry *mm,
		  const struct pm_pages_src *src);
void pm_chain_free(struct pm_chain *pc);

/*
 * Loads one pagemap (task or shmem) of one directory: entries sorted,
 * aligned, flags PE_PRESENT or PE_PARENT (or PE_LAZY, taking no bytes,
 * only with @src: a post-copy restore), the pages file exactly as long
 * as the PE_PRESENT entries say. Opens the pages file into l->pages_fd
 * (from @src if it is not NULL: see struct pm_pages_src).
 */
int pm_layer_load(struct pm_layer *l, int dirfd, int type, unsigned long id,
		  const struct pm_pages_src *src);
void pm_layer_free(struct pm_layer *l);
/* Index of the first entry of @l that ends after @addr (entries are sorted). */
int pm_layer_seek(const struct pm_layer *l, uint64_t addr);
bool pm_layer_has_parent_refs(const struct pm_layer *l);
/* Whether entries of @l (of any flags) cover every page of [start, end). */
bool pm_layer_covers(const struct pm_layer *l, uint64_t start, uint64_t end);
/*
 * A pagemap entry as CRIU 4.x writes it (the count in field 5, field 2
 * zero) takes its count into nr_pages; -EINVAL if it does not fit in the
 * 32 bits amber keeps (16 TiB).
 */
int pagemap_entry_fixup(PagemapEntry *pe);
/* The VMA of @mm holding @addr, or NULL. */
const VmaEntry *mm_vma_at(const MmEntry *mm, uint64_t addr);

#endif
