// SPDX-License-Identifier: MIT
/*
 * The pagemap chain loader: pm_chain_load() over pagemap-PID.img and its
 * parent/ chain (incremental dumps), each layer checked against its pages
 * file, PE_PARENT ranges resolved, runs, zaps and the lazy view built;
 * and pm_layer_load() of every pagemap-shmem-ID.img, as rst_load() and the
 * page server do.
 *
 * Input: u8 flags | a packed image set (common.h) holding pagemap-PID.img
 * (the first one found is the task), pages files (sparse), maybe
 * parent/..., maybe mm-PID.img.
 *   flags & 1: use mm-PID.img's VMAs (checked as load_mm() checks them:
 *              the loader's precondition); else one private VMA over all
 *              user addresses
 *   flags & 2: pages "handed over" (pm_pages_src none), as post-copy loads
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/util.h"
#include "common.h"
#include "image/image.h"
#include "mem/pagemap_chain.h"
#include "mem/vma.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fz_init();
	return 0;
}

/* load_mm()'s checks: the chain loader relies on sorted, aligned VMAs. */
static bool vmas_ok(const MmEntry *mm)
{
	for (size_t i = 0; i < mm->n_vmas; i++) {
		const VmaEntry *v = mm->vmas[i];

		if (v->start >= v->end || (v->start | v->end) & (PAGE_SIZE - 1) ||
		    (i && v->start < mm->vmas[i - 1]->end))
			return false;
	}
	return true;
}

static void load_task(int dirfd, int pid, bool use_mm, const struct pm_pages_src *src)
{
	VmaEntry all = VMA_ENTRY__INIT, *vmas[1] = { &all };
	MmEntry whole = MM_ENTRY__INIT, *mm = NULL;
	struct pm_chain pc;

	if (use_mm && img_read_one(dirfd, IMG_MM, pid, &mm_entry__descriptor,
				   (ProtobufCMessage **)&mm))
		return;
	if (mm && !vmas_ok(mm))
		goto out;
	if (!mm) {
		all.start = PAGE_SIZE;
		all.end = 1ull << 47;
		all.status = VMA_AREA_REGULAR | VMA_ANON_PRIVATE;
		whole.n_vmas = 1;
		whole.vmas = vmas;
	}
	if (!pm_chain_load(&pc, dirfd, pid, mm ? mm : &whole, src))
		pm_chain_free(&pc);
out:
	if (mm)
		mm_entry__free_unpacked(mm, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct pm_pages_src none = { .none = true };
	const struct pm_pages_src *src;
	struct dirent *de;
	int dirfd, pid = 0;
	DIR *d;

	fz_fds_begin();

	if (!size)
		return 0;
	src = data[0] & 2 ? &none : NULL;
	dirfd = fz_fresh_dir();
	fz_unpack(dirfd, data + 1, size - 1);
	d = fdopendir(dup(dirfd));
	while (d && (de = readdir(d))) {
		unsigned long id;
		struct pm_layer l;

		if (sscanf(de->d_name, "pagemap-shmem-%lu.img", &id) == 1) {
			if (!pm_layer_load(&l, dirfd, IMG_SHMEM_PAGEMAP, id, src)) {
				pm_layer_covers(&l, 0, PAGE_SIZE * 16);
				pm_layer_free(&l);
			}
		} else if (!pid && sscanf(de->d_name, "pagemap-%lu.img", &id) == 1 && id &&
			   id < (1u << 22)) {
			pid = id;
		}
	}
	if (d)
		closedir(d);
	if (pid)
		load_task(dirfd, pid, data[0] & 1, src);
	close(dirfd);
	fz_fds_end();
	return 0;
}
