// SPDX-License-Identifier: MIT
/*
 * Memory: the VMA list (mm-<pid>.img) and the pages that hold data of their
 * own (pagemap-<pid>.img indexing raw pages-<id>.img). Only present or
 * swapped private pages are saved; the kernel's zero page and pages still
 * backed by a file's page cache are not. Shared anonymous memory is saved
 * once per shmem object, whoever maps it.
 */
#define LOG_PREFIX "mm: "
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>

#include "dump/dump.h"
#include "dump/memory.h"
#include "dump/ns.h"
#include "files/files.h"
#include "image/magic.h"
#include "base/log.h"
#include "mem/inc.h"
#include "mm.pb-c.h"
#include "pagemap.pb-c.h"
#include "base/proc.h"
#include "base/uapi.h"
#include "base/util.h"
#include "mem/vma.h"
#include "mem/xfer.h"

/* One pagemap entry covers at most this much, so each has its own checksum. */
#define CHUNK_PAGES 512
#define CHUNK_BYTES (CHUNK_PAGES * PAGE_SIZE)

struct pages_out {
	struct dump_ctx *dc;
	pid_t pid;
	int mem_fd;		/* /proc/PID/mem, for pages process_vm_readv can't read */
	struct xfer *x;		/* where the pages go: xfer.h */
	uint64_t nr_pages;
	/* The current VMA's pages stay in the frozen tree (dump --lazy-pages). */
	bool lazy;
	uint64_t nr_lazy;
};

/*
 * The shared zero page's pfn, or 0. Two read faults on two mappings must
 * give the same pfn: a kernel that backs a read fault with a fresh page
 * (seen on this 6.18 VM) would otherwise name a page that is freed and
 * reused by the tree, and that page would be left out of the dump.
 */
int dump_probe_zero_pfn(uint64_t *pfn)
{
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	volatile char *p;
	uint64_t pme[2] = { 0, 0 };

	if (fd < 0)
		return -errno;
	p = mmap(NULL, 2 * PAGE_SIZE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		close(fd);
		return -errno;
	}
	(void)p[0]; /* read faults map the zero page */
	(void)p[PAGE_SIZE];
	if (pread(fd, pme, sizeof(pme), (uintptr_t)p / PAGE_SIZE * 8) != sizeof(pme))
		pme[0] = 0;
	munmap((void *)p, 2 * PAGE_SIZE);
	close(fd);
	*pfn = (pme[0] & PME_PRESENT) && (pme[1] & PME_PRESENT) &&
			       (pme[0] & PME_PFN_MASK) == (pme[1] & PME_PFN_MASK) ?
		       (pme[0] & PME_PFN_MASK) : 0;
	if (!*pfn)
		pr_info("no shared zero page behind read faults: zero pages will be dumped\n");
	return 0;
}

int dump_mm_remote_state(struct dump_task *t, struct mm_remote_state *st)
{
	long ret;
	int err;

	err = remote_syscall(&t->rem, SYS_brk, &ret, 0, 0, 0, 0, 0, 0);
	if (err)
		return err;
	st->brk = ret;
	err = remote_syscall(&t->rem, SYS_prctl, &ret, PR_GET_DUMPABLE, 0, 0, 0, 0, 0);
	st->dumpable = err ? 1 : ret;
	err = remote_syscall(&t->rem, SYS_prctl, &ret, PR_GET_THP_DISABLE, 0, 0, 0, 0, 0);
	st->thp_disabled = err ? 0 : ret;
	return 0;
}

static uint64_t madv_bits(unsigned long vmflags)
{
	uint64_t m = 0;

	if (vmflags & VMF_DONTCOPY)
		m |= 1ULL << MADV_DONTFORK;
	if (vmflags & VMF_DONTDUMP)
		m |= 1ULL << MADV_DONTDUMP;
	if (vmflags & VMF_HUGEPAGE)
		m |= 1ULL << MADV_HUGEPAGE;
	if (vmflags & VMF_NOHUGEPAGE)
		m |= 1ULL << MADV_NOHUGEPAGE;
	if (vmflags & VMF_MERGEABLE)
		m |= 1ULL << MADV_MERGEABLE;
	if (vmflags & VMF_WIPEONFORK)
		m |= 1ULL << MADV_WIPEONFORK;
	if (vmflags & VMF_SEQ_READ)
		m |= 1ULL << MADV_SEQUENTIAL;
	if (vmflags & VMF_RAND_READ)
		m |= 1ULL << MADV_RANDOM;
	return m;
}

static bool is_vvar(const char *path)
{
	return path && (!strcmp(path, "[vvar]") || !strcmp(path, "[vvar_vclock]"));
}

/*
 * hugetlb: private anonymous (MAP_HUGETLB) memory is saved like any private
 * anonymous memory, its page size in the flags (MAP_HUGE_SHIFT), and mapped
 * back with huge pages. hugetlbfs files and shared hugetlb are refused.
 */
static int vma_hugetlb(pid_t pid, const struct proc_vma *pv, VmaEntry *v)
{
	unsigned long kb = pv->page_kb;

	if (pv->shared || !pv->path || strcmp(pv->path, "/anon_hugepage (deleted)") ||
	    kb < 8 || (kb & (kb - 1))) {
		pr_err("%d: hugetlb VMA %#lx-%#lx (%s, %lu kB pages) is not supported: only "
		       "private anonymous huge pages are\n", pid, (unsigned long)pv->start,
		       (unsigned long)pv->end, pv->path ? pv->path : "anonymous", kb);
		return -ENOTSUP;
	}
	v->status = VMA_AREA_REGULAR | VMA_ANON_PRIVATE;
	v->flags |= MAP_ANONYMOUS | MAP_HUGETLB |
		    (uint32_t)(__builtin_ctzl(kb) + 10) << MAP_HUGE_SHIFT;
	return 0;
}

/*
 * A task's attach of SysV segment v->shmid: one saved with the tree's IPC
 * namespace (ns_ipc_sysv.c, which ran first), or one of amber's namespace,
 * which stays there and must not be marked for removal (it would die with
 * the tree).
 */
static int check_sysv_attach(struct dump_ctx *dc, pid_t pid, const VmaEntry *v)
{
	uint64_t need = v->pgoff + (v->end - v->start);
	struct shmid_ds ds;

	if (dc->ns.ipc_ns_id) {
		for (size_t i = 0; i < dc->ns.nr_shm; i++)
			if (dc->ns.shm[i].id == v->shmid && need <= PAGE_ALIGN(dc->ns.shm[i].size))
				return 0;
		pr_err("process %d: SysV shared memory id %llu attached at %#llx is not among the "
		       "saved segments of its IPC namespace\n", pid, (unsigned long long)v->shmid,
		       (unsigned long long)v->start);
		return -ENOTSUP;
	}
	/* amber's (the host's) IPC namespace: the segment stays there, not saved. */
	if (shmctl(v->shmid, IPC_STAT, &ds) < 0) {
		pr_perror("process %d: SysV shared memory id %llu attached at %#llx", pid,
			  (unsigned long long)v->shmid, (unsigned long long)v->start);
		return -errno;
	}
	if (ds.shm_perm.mode & SHM_DEST) {
		pr_err("process %d: SysV shared memory segment (key %#x, id %llu) attached at %#llx "
		       "is marked for removal (IPC_RMID) in amber's IPC namespace: it would be gone "
		       "with the tree; only a tree with an IPC namespace of its own saves it\n", pid,
		       ds.shm_perm.__key, (unsigned long long)v->shmid,
		       (unsigned long long)v->start);
		return -ENOTSUP;
	}
	pr_info("%d: attach of SysV segment %llu of amber's IPC namespace (left there)\n", pid,
		(unsigned long long)v->shmid);
	return 0;
}

static int vma_classify(struct dump_ctx *dc, pid_t pid, const struct proc_vma *pv, VmaEntry *v)
{
	const char *p = pv->path;

	v->fd = -1;
	v->flags = pv->shared ? MAP_SHARED : MAP_PRIVATE;
	if (pv->vmflags & VMF_GROWSDOWN)
		v->flags |= MAP_GROWSDOWN;
	/* mlock()ed or MAP_LOCKED: CRIU's VmaEntry keeps it as MAP_LOCKED too. */
	if (pv->vmflags & VMF_LOCKED)
		v->flags |= MAP_LOCKED;
	if (pv->vmflags & VMF_HUGETLB)
		return vma_hugetlb(pid, pv, v);
	if ((pv->vmflags & (VMF_IO | VMF_PFNMAP)) && !is_vvar(p)) {
		pr_err("%d: VMA %#lx-%#lx maps device memory: not supported\n", pid,
		       (unsigned long)pv->start, (unsigned long)pv->end);
		return -ENOTSUP;
	}
	if (!p || !strcmp(p, "[heap]") || !strcmp(p, "[stack]")) {
		if (pv->shared) {
			pr_err("%d: shared VMA without a file at %#lx\n", pid, (unsigned long)pv->start);
			return -ENOTSUP;
		}
		v->status = VMA_AREA_REGULAR | VMA_ANON_PRIVATE;
		if (p && p[1] == 'h')
			v->status |= VMA_AREA_HEAP;
		if (p && p[1] == 's')
			v->status |= VMA_AREA_STACK;
		v->flags |= MAP_ANONYMOUS;
		return 0;
	}
	/* MAP_ANONYMOUS as CRIU writes them: its restore maps a VVAR with no fd */
	if (!strcmp(p, "[vdso]")) {
		v->status = VMA_AREA_REGULAR | VMA_AREA_VDSO | VMA_ANON_PRIVATE;
		v->flags |= MAP_ANONYMOUS;
		return 0;
	}
	if (is_vvar(p)) {
		v->status = VMA_AREA_REGULAR | VMA_AREA_VVAR | VMA_ANON_PRIVATE;
		v->flags |= MAP_ANONYMOUS;
		return 0;
	}
	if (!strcmp(p, "/dev/zero (deleted)") || !strncmp(p, "/SYSV", 5)) {
		if (!pv->shared) {
			pr_err("%d: %s at %#lx is not supported\n", pid, p, (unsigned long)pv->start);
			return -ENOTSUP;
		}
		v->status = VMA_AREA_REGULAR | VMA_ANON_SHARED;
		v->flags |= MAP_ANONYMOUS;
		v->shmid = pv->ino; /* a SysV segment's inode number is its id */
		if (p[1] == 'S') {
			/* Attached read-write or SHM_RDONLY, whatever its protections now. */
			v->status |= VMA_AREA_SYSVIPC;
			v->has_fdflags = true;
			v->fdflags = (pv->vmflags & VMF_MAYWRITE) ? O_RDWR : O_RDONLY;
			return check_sysv_attach(dc, pid, v);
		}
		return 0;
	}
	if (!strncmp(p, "socket:[", 8) && pv->shared) {
		/* A packet socket's rings (PACKET_MMAP): CRIU's socket VMA, no pages. */
		uint32_t sid;
		int r = files_packet_map_id(&dc->files, pid, pv->ino, pv->start,
					    pv->end - pv->start, pv->pgoff, &sid);

		if (r)
			return r;
		v->status = VMA_AREA_REGULAR | VMA_AREA_SOCKET;
		v->shmid = sid;
		return 0;
	}
	if (dump_aio_is_ring(p)) {
		dump_aio_classify(v);
		return 0;
	}
	if (p[0] != '/') {
		pr_err("%d: special VMA %s at %#lx is not supported\n", pid, p,
		       (unsigned long)pv->start);
		return -ENOTSUP;
	}
	char mf[64];
	uint32_t id;
	int ret;

	snprintf(mf, sizeof(mf), "map_files/%lx-%lx", (unsigned long)pv->start,
		 (unsigned long)pv->end);
	ret = files_dump_path(&dc->files, pid, mf, &id);
	if (ret)
		return ret;
	v->shmid = id;
	v->status = VMA_AREA_REGULAR | (pv->shared ? VMA_FILE_SHARED : VMA_FILE_PRIVATE);
	if (!strncmp(p, "/memfd:", 7)) /* shmid names a memfd_file_entry, as in CRIU */
		v->status |= VMA_AREA_MEMFD;
	v->has_fdflags = true;
	v->fdflags = (pv->shared && (pv->prot & PROT_WRITE)) ? O_RDWR : O_RDONLY;
	return 0;
}

/* A run of the target's pages, read into the xfer's buffers (xfer_fill_fn). */
struct run_src {
	struct pages_out *po;
	uint64_t addr;
	bool readable;
};

static int read_target(void *arg, void *buf, uint64_t off, size_t len)
{
	const struct run_src *rs = arg;
	struct pages_out *po = rs->po;
	uint64_t addr = rs->addr + off;
	struct iovec l = { buf, len }, r = { (void *)(uintptr_t)addr, len };

	if (rs->readable && process_vm_readv(po->pid, &l, 1, &r, 1, 0) == (ssize_t)len)
		return 0;
	/* PROT_NONE or racing: /proc/PID/mem reads with FOLL_FORCE. */
	if (pread_full(po->mem_fd, buf, len, addr)) {
		pr_perror("can't read %zu bytes at %#lx of %d", len, (unsigned long)addr, po->pid);
		return -EIO;
	}
	return 0;
}

/* Saves [addr, addr + nr pages) of the target as one pagemap entry. */
static int put_run(struct pages_out *po, uint64_t addr, uint32_t nr, bool readable)
{
	struct run_src rs = { po, addr, readable };

	po->nr_pages += nr;
	if (po->lazy) { /* listed, not read: served from the tree (lazy.c) */
		po->nr_lazy += nr;
		return xfer_hole(po->x, addr, nr, PE_LAZY);
	}
	return xfer_add_fill(po->x, addr, nr, read_target, &rs);
}

static int dump_vma_pages(struct pages_out *po, int pagemap_fd, const VmaEntry *v)
{
	uint64_t pmes[CHUNK_PAGES];
	bool readable = v->prot & PROT_READ;

	for (uint64_t addr = v->start; addr < v->end;) {
		size_t n = min((v->end - addr) / PAGE_SIZE, (uint64_t)CHUNK_PAGES);
		uint64_t run_start = 0;
		uint32_t run = 0;

		if (pread_full(pagemap_fd, pmes, n * 8, addr / PAGE_SIZE * 8)) {
			pr_perror("can't read pagemap of %d", po->pid);
			return -EIO;
		}
		for (size_t i = 0; i < n; i++) {
			uint64_t a = addr + i * PAGE_SIZE;

			if (pme_wanted(pmes[i], po->dc->zero_pfn)) {
				if (!run)
					run_start = a;
				run++;
				continue;
			}
			if (run && put_run(po, run_start, run, readable))
				return -EIO;
			run = 0;
		}
		if (run && put_run(po, run_start, run, readable))
			return -EIO;
		addr += n * PAGE_SIZE;
	}
	return 0;
}

static bool shmem_seen(struct dump_ctx *dc, uint64_t ino)
{
	for (int i = 0; i < dc->nr_shmem_done; i++)
		if (dc->shmem_done[i] == ino)
			return true;
	return false;
}

/* A run of a shmem object, read into the xfer's buffers (xfer_fill_fn). */
struct shmem_src {
	int fd;
	const char *path;
	off_t off; /* where the run starts */
};

static int read_shmem(void *arg, void *buf, uint64_t off, size_t len)
{
	const struct shmem_src *src = arg;
	size_t got = 0;

	/* A SysV segment's size need not be page aligned: its last page ends in zeros. */
	while (got < len) {
		ssize_t n = pread(src->fd, (char *)buf + got, len - got, src->off + off + got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			pr_perror("can't read shared memory %s", src->path);
			return -EIO;
		}
		if (n == 0) {
			memset((char *)buf + got, 0, len - got);
			break;
		}
		got += n;
	}
	return 0;
}

/* Saves a shmem object's allocated extents; vaddr is the offset in the object. */
int dump_shmem_fd(struct dump_ctx *dc, int fd, const char *path, uint64_t shmid)
{
	struct pages_out po = { .dc = dc, .pid = 0, .mem_fd = -1 };
	struct shmem_src src = { .fd = fd, .path = path };
	struct stat st;
	off_t data, hole;
	int ret = -EIO;

	if (fstat(fd, &st)) {
		pr_perror("can't stat shared memory %s", path);
		return -errno;
	}
	if (xfer_open(dc->xt, XFER_SHMEM, shmid, &po.x))
		goto out;
	for (data = 0; data < st.st_size; data = hole) {
		data = lseek(fd, data, SEEK_DATA);
		if (data < 0)
			break; /* ENXIO: no more data */
		hole = lseek(fd, data, SEEK_HOLE);
		if (hole < 0)
			break;
		hole = PAGE_ALIGN(hole);
		for (src.off = data; src.off < hole; src.off += CHUNK_BYTES) {
			size_t len = min((uint64_t)(hole - src.off), (uint64_t)CHUNK_BYTES);

			if (xfer_add_fill(po.x, src.off, len / PAGE_SIZE, read_shmem, &src))
				goto out;
		}
	}
	ret = 0;
out:
	if (xfer_close(po.x))
		ret = -EIO;
	return ret;
}

static int dump_shmem(struct dump_ctx *dc, pid_t pid, const VmaEntry *v)
{
	char path[96];
	cleanup_close int fd = -1;
	uint64_t *n;

	/* SysV segments are saved with their IPC namespace (ns_ipc_sysv.c), or not at all. */
	if ((v->status & VMA_AREA_SYSVIPC) || shmem_seen(dc, v->shmid))
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/map_files/%lx-%lx", pid, (unsigned long)v->start,
		 (unsigned long)v->end);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		pr_perror("can't open shared memory %s", path);
		return -errno;
	}
	n = xrealloc_array(dc->shmem_done, dc->nr_shmem_done + 1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	dc->shmem_done = n;
	n[dc->nr_shmem_done++] = v->shmid;
	return dump_shmem_fd(dc, fd, path, v->shmid);
}

static int dump_pages(struct dump_ctx *dc, struct dump_task *t, MmEntry *mm)
{
	struct pages_out po = { .dc = dc, .pid = t->pid, .mem_fd = -1 };
	char path[64];
	cleanup_close int pagemap_fd = -1;
	int ret = -EIO;

	snprintf(path, sizeof(path), "/proc/%d/pagemap", t->pid);
	pagemap_fd = open(path, O_RDONLY | O_CLOEXEC);
	snprintf(path, sizeof(path), "/proc/%d/mem", t->pid);
	po.mem_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (pagemap_fd < 0 || po.mem_fd < 0) {
		pr_perror("can't open pagemap/mem of %d", t->pid);
		goto out;
	}
	if (xfer_open(dc->xt, XFER_TASK, t->vpid, &po.x))
		goto out;
	for (size_t i = 0; i < mm->n_vmas; i++) {
		VmaEntry *v = mm->vmas[i];

		po.lazy = dc->opts->lazy_pages && vma_can_be_lazy(v->status, v->flags, v->madv);
		if (v->status & VMA_AREA_AIORING) /* the kernel's pages: all of them */
			ret = put_run(&po, v->start, (v->end - v->start) / PAGE_SIZE, true);
		else if (!(v->status & VMA_ANON_SHARED) && vma_has_private_pages(v->status))
			ret = dump_vma_pages(&po, pagemap_fd, v);
		else if (v->status & VMA_AREA_VDSO)
			/*
			 * Whole, as CRIU does: its restore reads the saved vDSO's
			 * ELF to tell whether the running kernel's is the same.
			 * amber's restore drops these pages (pagemap_chain.c).
			 */
			ret = put_run(&po, v->start, (v->end - v->start) / PAGE_SIZE, true);
		else
			ret = 0;
		if (ret)
			goto out;
	}
	pr_info("%d: %lu pages (%lu of them left lazy)\n", t->pid, (unsigned long)po.nr_pages,
		(unsigned long)po.nr_lazy);
	dc->pages_written += po.nr_pages - po.nr_lazy;
	/* Shared memory after the task's pagemap is closed: one pagemap open at a time (xfer.h). */
	ret = xfer_close(steal_ptr(po.x)) ? -EIO : 0;
	for (size_t i = 0; i < mm->n_vmas && !ret; i++)
		if (mm->vmas[i]->status & VMA_ANON_SHARED)
			ret = dump_shmem(dc, t->pid, mm->vmas[i]);
out:
	if (xfer_close(po.x))
		ret = ret ? ret : -EIO;
	if (po.mem_fd >= 0)
		close(po.mem_fd);
	return ret;
}

/* Incremental: only pages written since the parent image get data. */
static int dump_pages_tracked(struct dump_ctx *dc, struct dump_task *t, MmEntry *mm)
{
	struct inc_parent parent;
	struct inc_plan plan;
	char path[64];
	cleanup_close int pagemap_fd = -1;
	int ret;

	for (size_t i = 0; i < mm->n_vmas; i++)
		if ((mm->vmas[i]->status & VMA_ANON_SHARED) &&
		    (ret = dump_shmem(dc, t->pid, mm->vmas[i])))
			return ret;
	snprintf(path, sizeof(path), "/proc/%d/pagemap", t->pid);
	pagemap_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (pagemap_fd < 0) {
		pr_perror("can't open %s", path);
		return -errno;
	}
	ret = inc_parent_load(dc->parent_dirfd, t->vpid, &parent);
	if (ret)
		return ret;
	ret = inc_parent_check_target(&parent, t->vpid, dc->xt);
	if (!ret)
		ret = inc_plan_build(&plan, dc->tracker, &t->track, &parent, mm->vmas,
				     mm->n_vmas, pagemap_fd);
	inc_parent_free(&parent);
	if (ret)
		return ret;
	ret = inc_plan_write(&plan, dc->xt, t->vpid);
	dc->pages_written += plan.nr_present;
	dc->pages_skipped_parent += plan.nr_parent;
	if (!ret && dc->opts->leave_running)
		ret = track_task_rearm(dc->tracker, &t->track);
	inc_plan_free(&plan);
	return ret;
}

/*
 * The auxv without its AT_NULL pairs: the kernel zero-fills what
 * PR_SET_MM_AUXV does not set, and CRIU 4.2 refuses more than 44 words
 * (22 entries, as many as Linux 6.18 gives an x86-64 task besides AT_NULL).
 */
static size_t auxv_len(const char *auxv, size_t n)
{
	uint64_t w[2];

	while (n >= 2) {
		memcpy(w, auxv + (n - 2) * sizeof(uint64_t), sizeof(w));
		if (w[0] || w[1])
			break;
		n -= 2;
	}
	return n;
}

static int mm_fill(struct dump_ctx *dc, struct dump_task *t, const struct mm_remote_state *rs,
		   MmEntry *mm)
{
	struct proc_stat st;
	size_t len = 0;
	cleanup_free char *auxv = read_proc(t->pid, "auxv", &len);
	uint32_t exe_id = 0;
	int ret = proc_parse_stat(t->pid, &st);

	if (ret)
		return ret;
	mm->mm_start_code = st.start_code;
	mm->mm_end_code = st.end_code;
	mm->mm_start_data = st.start_data;
	mm->mm_end_data = st.end_data;
	mm->mm_start_stack = st.start_stack;
	mm->mm_start_brk = st.start_brk;
	mm->mm_brk = rs->brk;
	mm->mm_arg_start = st.arg_start;
	mm->mm_arg_end = st.arg_end;
	mm->mm_env_start = st.env_start;
	mm->mm_env_end = st.env_end;
	if (!auxv) {
		pr_perror("can't read auxv of %d", t->pid);
		return -errno;
	}
	mm->n_mm_saved_auxv = auxv_len(auxv, len / sizeof(uint64_t));
	mm->mm_saved_auxv = arena_memdup(&dc->arena, auxv, len ? len : 1);
	ret = files_dump_path(&dc->files, t->pid, "exe", &exe_id);
	if (ret)
		return ret;
	mm->exe_file_id = exe_id;
	mm->has_dumpable = true;
	mm->dumpable = rs->dumpable;
	mm->has_thp_disabled = true;
	mm->thp_disabled = rs->thp_disabled;
	return mm->mm_saved_auxv ? 0 : -ENOMEM;
}

/*
 * [vvar] and [vvar_vclock] are saved as one VVAR VMA, as CRIU 4.2 does:
 * its restore takes a second VVAR VMA for a foreign mapping. amber's
 * restore lets one saved VVAR VMA cover the kernel's several.
 */
static bool vvar_extends(MmEntry *mm, const VmaEntry *v)
{
	VmaEntry *prev = mm->n_vmas ? mm->vmas[mm->n_vmas - 1] : NULL;

	if (!prev || !(prev->status & VMA_AREA_VVAR) || !(v->status & VMA_AREA_VVAR) ||
	    prev->end != v->start || prev->prot != v->prot)
		return false;
	prev->end = v->end;
	return true;
}

int dump_task_mm(struct dump_ctx *dc, struct dump_task *t, const struct mm_remote_state *rs)
{
	struct proc_vma *pvs = NULL;
	MmEntry mm = MM_ENTRY__INIT;
	int nr, ret;

	ret = mm_fill(dc, t, rs, &mm);
	if (ret)
		return ret;
	nr = proc_parse_smaps(t->pid, &pvs);
	if (nr < 0)
		return nr;
	mm.vmas = arena_array(&dc->arena, VmaEntry *, nr);
	if (!mm.vmas) {
		ret = -ENOMEM;
		goto out;
	}
	for (int i = 0; i < nr; i++) {
		VmaEntry *v;

		if (pvs[i].path && !strcmp(pvs[i].path, "[vsyscall]"))
			continue;
		v = arena_new(&dc->arena, VmaEntry);
		if (!v) {
			ret = -ENOMEM;
			goto out;
		}
		vma_entry__init(v);
		v->start = pvs[i].start;
		v->end = pvs[i].end;
		v->pgoff = pvs[i].pgoff;
		v->prot = pvs[i].prot;
		v->has_madv = true;
		v->madv = madv_bits(pvs[i].vmflags);
		ret = vma_classify(dc, t->pid, &pvs[i], v);
		if (ret)
			goto out;
		if (vvar_extends(&mm, v))
			continue;
		mm.vmas[mm.n_vmas++] = v;
	}
	if (dc->tracker && dc->opts->leave_running && t->track.target_fd >= 0) {
		mm.has_amber_track_fd = true; /* the next incremental dump goes on from here */
		mm.amber_track_fd = t->track.target_fd;
	}
	ret = dump_aio_rings(dc, t->pid, &mm);
	if (!ret)
		ret = img_write_one(dc->dirfd, IMG_MM, t->vpid, &mm.base);
	if (!ret) {
		uint64_t t0 = mono_ns();

		ret = dc->tracker ? dump_pages_tracked(dc, t, &mm) : dump_pages(dc, t, &mm);
		dc->memdump_ns += mono_ns() - t0;
	}
out:
	proc_vmas_free(pvs, nr);
	return ret;
}
