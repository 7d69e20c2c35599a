// SPDX-License-Identifier: MIT
/*
 * Pagemaps through a chain of incremental images: loading and checking
 * each layer, resolving PE_PARENT ranges to the layer that holds their
 * data, and turning that into the runs the restorer reads (see
 * pagemap_chain.h for the model).
 */
#define LOG_PREFIX "pagemap: "
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image/image.h"
#include "image/magic.h"
#include "base/log.h"
#include "pagemap.pb-c.h"
#include "mem/pagemap_chain.h"
#include "base/util.h"
#include "mem/vma.h"

static uint64_t ent_end(const struct pm_ent *e)
{
	return e->vaddr + (uint64_t)e->nr_pages * PAGE_SIZE;
}

static int ent_flags(const PagemapEntry *pe)
{
	if (!pe->has_flags)
		return pe->has_in_parent && pe->in_parent ? PE_PARENT : PE_PRESENT;
	if (pe->flags == PE_PRESENT || pe->flags == PE_PARENT)
		return pe->flags;
	/* CRIU marks private anonymous pages "may be lazy": data still here */
	if (pe->flags == (PE_PRESENT | PE_LAZY))
		return PE_PRESENT;
	/* dump --lazy-pages: the data is at the dump's page server only */
	if (pe->flags == PE_LAZY)
		return PE_LAZY;
	return -1;
}

static int layer_add(struct pm_layer *l, const PagemapEntry *pe, int flags, uint64_t off)
{
	struct pm_ent *n = xrealloc_array(l->ents, l->nr + 1, sizeof(*n));

	if (!n)
		return -ENOMEM;
	l->ents = n;
	n[l->nr++] = (struct pm_ent){
		.vaddr = pe->vaddr,
		.nr_pages = pe->nr_pages,
		.flags = flags,
		.off = off,
	};
	n[l->nr - 1].csum_ver = pagemap_entry_csum(pe, &n[l->nr - 1].csum);
	return 0;
}

/* The pages file @src hands over for @pages_id, dup'ed; -ENOENT if none. */
static int given_pages_fd(const struct pm_pages_src *src, uint32_t pages_id)
{
	for (int i = 0; i < src->nr_fds; i++)
		if (src->fds[i].id == pages_id)
			return fcntl(src->fds[i].fd, F_DUPFD_CLOEXEC, 0);
	errno = ENOENT;
	return -1;
}

static int layer_check_size(struct pm_layer *l, int dirfd, uint32_t pages_id, uint64_t size,
			    const char *pm_name, const struct pm_pages_src *src)
{
	char name[64];
	struct stat st;

	img_name(IMG_PAGES, pages_id, name, sizeof(name));
	l->pages_size = size;
	if (src && src->none)
		return 0;
	if (src)
		l->pages_fd = given_pages_fd(src, pages_id);
	else
		l->pages_fd = img_file_open(dirfd, name, O_RDONLY);
	if (!src && l->pages_fd < 0) {
		int err = l->pages_fd;

		l->pages_fd = -1;
		pr_err("can't open %s: %s\n", name, strerror(-err));
		return err;
	}
	if (l->pages_fd < 0 || fstat(l->pages_fd, &st)) {
		if (src) {
			pr_perror("%s was not handed over by the lazy-pages daemon", name);
			return -errno;
		}
		pr_perror("can't open %s", name);
		return -errno;
	}
	if ((uint64_t)st.st_size != size) {
		pr_err("%s holds %lld bytes but %s says %llu: truncated or corrupt\n", name,
		       (long long)st.st_size, pm_name, (unsigned long long)size);
		return -EINVAL;
	}
	return 0;
}

int pagemap_entry_fixup(PagemapEntry *pe)
{
	if (!pe->has_nr_pages_u64)
		return 0;
	if (pe->nr_pages_u64 > UINT32_MAX || (pe->nr_pages && pe->nr_pages != pe->nr_pages_u64))
		return -EINVAL;
	pe->nr_pages = pe->nr_pages_u64;
	return 0;
}

int pm_layer_load(struct pm_layer *l, int dirfd, int type, unsigned long id,
		  const struct pm_pages_src *src)
{
	struct img *img = img_open(dirfd, type, false, id);
	PagemapHead *ph = NULL;
	PagemapEntry *pe;
	uint64_t off = 0, prev_end = 0;
	uint32_t pages_id;
	int ret;

	memset(l, 0, sizeof(*l));
	l->pages_fd = -1;
	if (!img)
		return -errno;
	ret = img_read_msg(img, &pagemap_head__descriptor, (ProtobufCMessage **)&ph);
	if (ret <= 0) {
		pr_err("%s: no pagemap head\n", img->name);
		img_close(img);
		return ret ? ret : -EINVAL;
	}
	pages_id = ph->pages_id;
	pagemap_head__free_unpacked(ph, NULL);
	while ((ret = img_read_msg(img, &pagemap_entry__descriptor, (ProtobufCMessage **)&pe)) > 0) {
		int flags = pagemap_entry_fixup(pe) ? -1 : ent_flags(pe);
		uint64_t end = pe->vaddr + (uint64_t)pe->nr_pages * PAGE_SIZE;

		if (flags < 0 || !pe->nr_pages || (pe->vaddr & (PAGE_SIZE - 1)) ||
		    pe->vaddr < prev_end || end <= pe->vaddr) {
			pr_err("%s: entry %#llx+%u pages (flags %#x) is unsorted, overlapping "
			       "or has unsupported flags\n",
			       img->name, (unsigned long long)pe->vaddr, pe->nr_pages, pe->flags);
			ret = -EINVAL;
		} else if (flags == PE_LAZY && !src) {
			pr_err("%s: pages at %#llx are in no file here: the dump (--lazy-pages) "
			       "serves them; restore with --lazy-pages and `amber lazy-pages "
			       "--page-server`\n", img->name, (unsigned long long)pe->vaddr);
			ret = -EINVAL;
		} else {
			ret = layer_add(l, pe, flags, off);
		}
		pagemap_entry__free_unpacked(pe, NULL);
		if (ret)
			break;
		if (flags == PE_PRESENT)
			off += end - l->ents[l->nr - 1].vaddr;
		prev_end = end;
	}
	l->pages_id = pages_id;
	if (!ret)
		ret = layer_check_size(l, dirfd, pages_id, off, img->name, src);
	img_close(img);
	if (ret)
		pm_layer_free(l);
	return ret;
}

void pm_layer_free(struct pm_layer *l)
{
	free(l->ents);
	l->ents = NULL;
	l->nr = 0;
	if (l->pages_fd >= 0)
		close(l->pages_fd);
	l->pages_fd = -1;
}

int pm_layer_seek(const struct pm_layer *l, uint64_t addr)
{
	int lo = 0, hi = l->nr;

	while (lo < hi) {
		int mid = (lo + hi) / 2;

		if (ent_end(&l->ents[mid]) <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int add_run_to(struct rst_pages **runs, int *nr, const struct pm_ent *e, uint64_t start,
		      uint64_t end, int layer)
{
	struct rst_pages *n = xrealloc_array(*runs, *nr + 1, sizeof(*n));

	if (!n)
		return -ENOMEM;
	*runs = n;
	n[(*nr)++] = (struct rst_pages){
		.vaddr = start,
		.nr_pages = (end - start) / PAGE_SIZE,
		.off = e->off + (start - e->vaddr),
		.csum = e->csum,
		.csum_ver = start == e->vaddr && end == ent_end(e) ? e->csum_ver : 0,
		.layer = layer,
	};
	return 0;
}

static int add_run(struct pm_chain *pc, const struct pm_ent *e, uint64_t start, uint64_t end,
		   int layer)
{
	return add_run_to(&pc->runs, &pc->nr_runs, e, start, end, layer);
}

/*
 * Marks the entries of layer @k that hold [start, end), and adds the parts
 * they hold to the lazy view; PE_PARENT parts go one layer up. Every page
 * must be covered: a gap is a broken chain.
 */
static int resolve(struct pm_chain *pc, int k, uint64_t start, uint64_t end)
{
	struct pm_layer *l;
	uint64_t at = start;

	if (k >= pc->nr_layers) {
		pr_err("pages %#llx-%#llx are in a parent image, but there is no parent "
		       "(missing 'parent' link?)\n", (unsigned long long)start,
		       (unsigned long long)end);
		return -EINVAL;
	}
	l = &pc->layers[k];
	for (int i = pm_layer_seek(l, start); i < l->nr && at < end; i++) {
		struct pm_ent *e = &l->ents[i];
		uint64_t s = max(at, e->vaddr), t = min(end, ent_end(e));
		int ret;

		if (e->vaddr > at)
			break; /* a gap */
		if (e->flags == PE_PRESENT) {
			e->used = true;
			ret = add_run_to(&pc->lazy, &pc->nr_lazy, e, s, t, k);
		} else {
			ret = resolve(pc, k + 1, s, t);
		}
		if (ret)
			return ret;
		at = t;
	}
	if (at < end) {
		pr_err("parent image %d lacks pages %#llx-%#llx that a newer image refers "
		       "to: the chain is inconsistent\n", k, (unsigned long long)at,
		       (unsigned long long)end);
		return -EINVAL;
	}
	return 0;
}

static int add_zap(struct pm_chain *pc, uint64_t start, uint64_t end)
{
	struct pm_range *n;

	if (pc->nr_zaps && pc->zaps[pc->nr_zaps - 1].end == start) {
		pc->zaps[pc->nr_zaps - 1].end = end;
		return 0;
	}
	n = xrealloc_array(pc->zaps, pc->nr_zaps + 1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	pc->zaps = n;
	n[pc->nr_zaps++] = (struct pm_range){ start, end };
	return 0;
}

/* Zaps the parts of [start, end) that layer 0 does not list at all. */
static int zap_absent(struct pm_chain *pc, uint64_t start, uint64_t end)
{
	const struct pm_layer *l0 = &pc->layers[0];
	uint64_t at = start;
	int ret = 0;

	for (int i = pm_layer_seek(l0, start); i < l0->nr && at < end && !ret; i++) {
		const struct pm_ent *e = &l0->ents[i];

		if (e->vaddr >= end)
			break;
		if (e->vaddr > at)
			ret = add_zap(pc, at, e->vaddr);
		at = min(end, ent_end(e));
	}
	if (!ret && at < end)
		ret = add_zap(pc, at, end);
	return ret;
}

const VmaEntry *mm_vma_at(const MmEntry *mm, uint64_t addr)
{
	size_t lo = 0, hi = mm->n_vmas;

	/* mm-PID.img's VMAs are sorted and disjoint (checked at load) */
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		const VmaEntry *v = mm->vmas[mid];

		if (addr < v->start)
			hi = mid;
		else if (addr >= v->end)
			lo = mid + 1;
		else
			return v;
	}
	return NULL;
}

static const VmaEntry *private_vma_at(const MmEntry *mm, uint64_t addr)
{
	const VmaEntry *v = mm_vma_at(mm, addr);

	return v && vma_has_private_pages(v->status) ? v : NULL;
}

/* Reads a whole entry and checks its checksum, for entries read in parts. */
static int verify_ent(const struct pm_layer *l, const struct pm_ent *e, int layer)
{
	size_t len = (size_t)e->nr_pages * PAGE_SIZE;
	cleanup_free uint8_t *buf = NULL;

	if (!e->csum_ver)
		return 0;
	buf = malloc(len);
	if (!buf)
		return -ENOMEM;
	if (pread_full(l->pages_fd, buf, len, e->off)) {
		pr_perror("can't read pages of parent image %d", layer);
		return -EIO;
	}
	if (amber_csum_ver(buf, len, e->vaddr, e->csum_ver) != e->csum) {
		pr_err("parent image %d: checksum of pages at %#llx does not match "
		       "(corrupt image)\n", layer, (unsigned long long)e->vaddr);
		return -EINVAL;
	}
	return 0;
}

/* An older entry: whole if it lies in private VMAs, else its mapped parts. */
static int emit_parent_ent(struct pm_chain *pc, const MmEntry *mm, int k, const struct pm_ent *e)
{
	uint64_t at = e->vaddr, end = ent_end(e);
	const VmaEntry *v = private_vma_at(mm, at);
	int ret;

	if (v && end <= v->end) {
		ret = add_run(pc, e, at, end, k);
		return ret ? ret : zap_absent(pc, at, end);
	}
	ret = verify_ent(&pc->layers[k], e, k);
	while (!ret && at < end) {
		uint64_t t;

		v = private_vma_at(mm, at);
		t = v ? min(end, (uint64_t)v->end) : at + PAGE_SIZE;
		if (v && !(ret = add_run(pc, e, at, t, k)))
			ret = zap_absent(pc, at, t);
		at = t;
	}
	return ret;
}

static int emit_runs(struct pm_chain *pc, const MmEntry *mm)
{
	for (int k = pc->nr_layers - 1; k >= 0; k--) {
		struct pm_layer *l = &pc->layers[k];

		for (int i = 0; i < l->nr; i++) {
			struct pm_ent *e = &l->ents[i];
			int ret;

			if (!e->used || e->flags == PE_LAZY) /* the daemon's alone */
				continue;
			ret = k ? emit_parent_ent(pc, mm, k, e) :
				  add_run(pc, e, e->vaddr, ent_end(e), 0);
			if (ret)
				return ret;
		}
	}
	return 0;
}

/* Layer 0 must fit the VMAs exactly: it describes this very mm. */
static int check_top_layer(const struct pm_layer *l, const MmEntry *mm, int pid)
{
	for (int i = 0; i < l->nr; i++) {
		const struct pm_ent *e = &l->ents[i];
		const VmaEntry *v = private_vma_at(mm, e->vaddr);

		if (!v || ent_end(e) > v->end) {
			pr_err("pagemap-%d.img: entry %#llx+%u pages is outside the private "
			       "VMAs\n", pid, (unsigned long long)e->vaddr, e->nr_pages);
			return -EINVAL;
		}
		/* Only the daemon delivers them, into VMAs the restore leaves lazy. */
		if (e->flags == PE_LAZY && !vma_can_be_lazy(v->status, v->flags, v->madv)) {
			pr_err("pagemap-%d.img: lazy entry %#llx+%u pages in a VMA that is "
			       "restored eagerly\n", pid, (unsigned long long)e->vaddr,
			       e->nr_pages);
			return -EINVAL;
		}
	}
	return 0;
}

bool pm_layer_covers(const struct pm_layer *l, uint64_t start, uint64_t end)
{
	uint64_t at = start;

	for (int i = pm_layer_seek(l, start); i < l->nr && at < end; i++) {
		if (l->ents[i].vaddr > at)
			return false; /* a gap */
		at = ent_end(&l->ents[i]);
	}
	return at >= end;
}

bool pm_layer_has_parent_refs(const struct pm_layer *l)
{
	for (int i = 0; i < l->nr; i++)
		if (l->ents[i].flags == PE_PARENT)
			return true;
	return false;
}

static int load_layers(struct pm_chain *pc, int dirfd, int pid, const struct pm_pages_src *src)
{
	int cur = dirfd, ret;

	ret = pm_layer_load(&pc->layers[0], dirfd, IMG_PAGEMAP, pid, src);
	pc->nr_layers = !ret;
	while (!ret && pm_layer_has_parent_refs(&pc->layers[pc->nr_layers - 1])) {
		int up = openat(cur, "parent", O_DIRECTORY | O_RDONLY | O_CLOEXEC);

		if (up < 0)
			break; /* resolve() names the missing pages */
		if (pc->nr_layers == PM_MAX_CHAIN) {
			pr_err("image chain is longer than %d: a 'parent' loop?\n", PM_MAX_CHAIN);
			ret = -ELOOP;
		} else {
			ret = pm_layer_load(&pc->layers[pc->nr_layers], up, IMG_PAGEMAP, pid, NULL);
			if (!ret)
				pc->nr_layers++;
		}
		if (cur != dirfd)
			close(cur);
		cur = up;
	}
	if (cur != dirfd)
		close(cur);
	return ret;
}

/*
 * CRIU merges the entries of adjacent VMAs into one, and saves the vdso's
 * pages (so does amber, for CRIU): split entries at VMA ends, so each lies
 * in one VMA as amber writes them, and drop the vdso/vvar pieces (the
 * restore keeps the running kernel's own). An entry with amber's checksum
 * is checked whole: never split (amber never writes one across VMAs).
 */
static int fit_to_vmas(struct pm_layer *l, const MmEntry *mm)
{
	int i = 0;

	while (i < l->nr) {
		struct pm_ent *e = &l->ents[i], *n;
		const VmaEntry *v = mm_vma_at(mm, e->vaddr);
		uint32_t head;

		if (!v) {
			i++;
			continue;
		}
		if (!e->csum_ver && ent_end(e) > v->end && mm_vma_at(mm, v->end)) {
			n = xrealloc_array(l->ents, l->nr + 1, sizeof(*n));
			if (!n)
				return -ENOMEM;
			l->ents = n;
			e = &l->ents[i];
			memmove(e + 1, e, (l->nr - i) * sizeof(*e));
			l->nr++;
			head = (v->end - e->vaddr) / PAGE_SIZE;
			e[1].vaddr = v->end;
			e[1].nr_pages = e->nr_pages - head;
			if (e->flags == PE_PRESENT)
				e[1].off = e->off + (uint64_t)head * PAGE_SIZE;
			e->nr_pages = head;
		}
		if ((v->status & (VMA_AREA_VDSO | VMA_AREA_VVAR)) && ent_end(e) <= v->end) {
			memmove(e, e + 1, (l->nr - i - 1) * sizeof(*e));
			l->nr--;
			continue;
		}
		i++;
	}
	return 0;
}

int pm_chain_load(struct pm_chain *pc, int dirfd, int pid, const MmEntry *mm,
		  const struct pm_pages_src *src)
{
	struct pm_layer *l0 = &pc->layers[0];
	int ret;

	memset(pc, 0, sizeof(*pc));
	ret = load_layers(pc, dirfd, pid, src);
	for (int i = 0; !ret && i < pc->nr_layers; i++)
		ret = fit_to_vmas(&pc->layers[i], mm);
	if (!ret)
		ret = check_top_layer(l0, mm, pid);
	for (int i = 0; !ret && i < l0->nr; i++) {
		struct pm_ent *e = &l0->ents[i];

		if (e->flags == PE_PRESENT || e->flags == PE_LAZY) {
			e->used = true;
			ret = add_run_to(&pc->lazy, &pc->nr_lazy, e, e->vaddr, ent_end(e), 0);
		} else {
			ret = resolve(pc, 1, e->vaddr, ent_end(e));
		}
	}
	if (!ret)
		ret = emit_runs(pc, mm);
	if (ret) {
		pr_err("pages of task %d refused\n", pid);
		pm_chain_free(pc);
	}
	return ret;
}

void pm_chain_free(struct pm_chain *pc)
{
	for (int i = 0; i < pc->nr_layers; i++)
		pm_layer_free(&pc->layers[i]);
	pc->nr_layers = 0;
	free(pc->runs);
	free(pc->zaps);
	free(pc->lazy);
	pc->runs = pc->lazy = NULL;
	pc->zaps = NULL;
	pc->nr_runs = pc->nr_zaps = pc->nr_lazy = 0;
}
