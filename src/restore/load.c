// SPDX-License-Identifier: MIT
/*
 * Reading and checking every image before anything is forked: magic,
 * framing, sizes, page runs against the VMAs and the pages files.
 */
#define LOG_PREFIX "load: "
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "files/files.h"
#include "image/image.h"
#include "image/magic.h"
#include "image/sums.h"
#include "inventory.pb-c.h"
#include "base/log.h"
#include "restore/pidns.h"
#include "restore/restore.h"
#include "restore/restorer_args.h"
#include "cgroup.pb-c.h"
#include "restore/seccomp.h"
#include "restore/task_state.h"
#include "base/util.h"
#include "mem/vma.h"
#include "mnt.pb-c.h"

#define TASK_ALIVE   1
#define TASK_DEAD    2
#define TASK_STOPPED 3

struct rst_task *rst_find_task(struct rst_ctx *rc, pid_t pid)
{
	for (int i = 0; i < rc->nr_tasks; i++)
		if (rc->tasks[i].pid == pid)
			return &rc->tasks[i];
	return NULL;
}

static int load_pstree(struct rst_ctx *rc)
{
	struct img *img = img_open(rc->dirfd, IMG_PSTREE, false, 0);
	PstreeEntry *pe;
	int ret;

	if (!img)
		return -errno;
	while ((ret = img_read_msg(img, &pstree_entry__descriptor, (ProtobufCMessage **)&pe)) > 0) {
		struct rst_task *n = xrealloc_array(rc->tasks, rc->nr_tasks + 1, sizeof(*n));

		if (!n) {
			pstree_entry__free_unpacked(pe, NULL);
			ret = -ENOMEM;
			break;
		}
		rc->tasks = n;
		n = &rc->tasks[rc->nr_tasks++];
		memset(n, 0, sizeof(*n));
		n->pe = pe;
		n->pid = pe->pid;
		n->ppid = pe->ppid;
		n->pgid = pe->pgid;
		n->sid = pe->sid;
		n->nr_threads = pe->n_threads;
		/* CRIU writes a zombie's one thread as 0: it is the task itself */
		if (pe->n_threads == 1 && !pe->threads[0])
			pe->threads[0] = pe->pid;
		if (!pe->pid || !pe->n_threads || pe->threads[0] != pe->pid) {
			pr_err("pstree.img: bad entry for pid %u\n", pe->pid);
			ret = -EINVAL;
			break;
		}
	}
	img_close(img);
	if (ret < 0)
		return ret;
	if (!rc->nr_tasks) {
		pr_err("pstree.img has no tasks\n");
		return -EINVAL;
	}
	/* Parents come before children; link them. */
	for (int i = 1; i < rc->nr_tasks; i++) {
		struct rst_task *t = &rc->tasks[i], *p = rst_find_task(rc, t->ppid);

		if (!p || p >= t) {
			pr_err("pstree.img: parent %d of %d is not in the tree before it\n", t->ppid,
			       t->pid);
			return -EINVAL;
		}
		t->parent = p;
		p->children = xrealloc_array(p->children, p->nr_children + 1, sizeof(t));
		if (!p->children)
			return -ENOMEM;
		p->children[p->nr_children++] = t;
	}
	return 0;
}

static bool ids_equal(const TaskKobjIdsEntry *a, const TaskKobjIdsEntry *b)
{
	uint8_t pa[256], pb[256];
	size_t na = task_kobj_ids_entry__get_packed_size(a);
	size_t nb = task_kobj_ids_entry__get_packed_size(b);

	return na == nb && na <= sizeof(pa) && task_kobj_ids_entry__pack(a, pa) == na &&
	       task_kobj_ids_entry__pack(b, pb) == nb && !memcmp(pa, pb, na);
}

/*
 * CRIU 4.x keeps a task's object ids in ids-<pid>.img, not in its core:
 * taken into the core (freed with it). amber writes both, which must then
 * agree. No file: the core's, or none (a zombie, as CRIU saves it).
 */
static int load_ids(struct rst_ctx *rc, struct rst_task *t)
{
	struct img *img = img_open_optional(rc->dirfd, IMG_IDS, t->pid);
	ProtobufCMessage *m = NULL;
	TaskKobjIdsEntry *ids;
	int ret;

	if (!img)
		return errno == ENOENT ? 0 : -errno;
	ret = img_read_msg(img, &task_kobj_ids_entry__descriptor, &m);
	img_close(img);
	if (ret <= 0) {
		pr_err("ids-%d.img: no entry\n", t->pid);
		return ret ? ret : -EINVAL;
	}
	ids = (TaskKobjIdsEntry *)m;
	if (!t->cores[0]->ids) {
		t->cores[0]->ids = ids;
		return 0;
	}
	ret = ids_equal(ids, t->cores[0]->ids) ? 0 : -EINVAL;
	if (ret)
		pr_err("ids-%d.img and core-%d.img name different objects\n", t->pid, t->pid);
	task_kobj_ids_entry__free_unpacked(ids, NULL);
	return ret;
}

static int load_cores(struct rst_ctx *rc, struct rst_task *t)
{
	t->cores = xzalloc(sizeof(*t->cores) * t->nr_threads);
	if (!t->cores)
		return -ENOMEM;
	for (int i = 0; i < t->nr_threads; i++) {
		CoreEntry *c;
		int ret = img_read_one(rc->dirfd, IMG_CORE, t->pe->threads[i], &core_entry__descriptor,
				       (ProtobufCMessage **)&c);

		if (ret)
			return ret;
		t->cores[i] = c;
		if (c->mtype != CORE_ENTRY__MARCH__X86_64) {
			pr_err("core-%u.img: not an x86_64 image\n", t->pe->threads[i]);
			return -EINVAL;
		}
		if (i == 0 && !c->tc) {
			pr_err("core-%d.img: no task core\n", t->pid);
			return -EINVAL;
		}
	}
	if (t->cores[0]->tc->task_state < TASK_ALIVE || t->cores[0]->tc->task_state > TASK_STOPPED) {
		pr_err("core-%d.img: bad task state %u\n", t->pid, t->cores[0]->tc->task_state);
		return -EINVAL;
	}
	/* Only the REGISTER commands of the expedited barriers (dump/membarrier.c). */
	if (t->cores[0]->tc->membarrier_registration_mask & ~RST_MEMBARRIER_REGISTER_CMDS) {
		pr_err("core-%d.img: membarrier registrations %#x: unknown commands\n", t->pid,
		       t->cores[0]->tc->membarrier_registration_mask);
		return -EINVAL;
	}
	t->zombie = t->cores[0]->tc->task_state == TASK_DEAD;
	t->exit_code = t->cores[0]->tc->exit_code;
	if (t->zombie)
		return 0;
	for (int i = 0; i < t->nr_threads; i++) {
		CoreEntry *c = t->cores[i];

		if (!c->thread_info || !c->thread_info->gpregs || !c->thread_info->fpregs ||
		    !c->thread_core) {
			pr_err("core-%u.img: registers missing\n", t->pe->threads[i]);
			return -EINVAL;
		}
	}
	int ret = load_ids(rc, t);

	if (ret)
		return ret;
	t->files_id = t->cores[0]->ids ? t->cores[0]->ids->files_id : 0;
	return rst_check_task_state(t);
}

/* Shared memory: data only, inside the object. */
static int load_shmem_pages(struct rst_ctx *rc, struct rst_shmem *s)
{
	int ret = pm_layer_load(&s->pages, rc->dirfd, IMG_SHMEM_PAGEMAP, s->shmid, rc->pages_src);

	for (int i = 0; !ret && i < s->pages.nr; i++) {
		const struct pm_ent *e = &s->pages.ents[i];

		if (e->flags != PE_PRESENT ||
		    e->vaddr + (uint64_t)e->nr_pages * PAGE_SIZE > s->size) {
			pr_err("pagemap-shmem-%llu.img: entry %#llx+%u pages is beyond the "
			       "object or not present\n", (unsigned long long)s->shmid,
			       (unsigned long long)e->vaddr, e->nr_pages);
			ret = -EINVAL;
		}
	}
	return ret;
}

static struct rst_shmem *find_shmem(struct rst_ctx *rc, uint64_t shmid)
{
	for (int i = 0; i < rc->nr_shmems; i++)
		if (rc->shmems[i].shmid == shmid)
			return &rc->shmems[i];
	return NULL;
}

/* A new, empty shared memory object @shmid at the end of rc->shmems, or NULL. */
static struct rst_shmem *add_shmem(struct rst_ctx *rc, uint64_t shmid)
{
	struct rst_shmem *s = xrealloc_array(rc->shmems, rc->nr_shmems + 1, sizeof(*s));

	if (!s)
		return NULL;
	rc->shmems = s;
	s = &rc->shmems[rc->nr_shmems++];
	*s = (struct rst_shmem){ .shmid = shmid, .fd = -1, .pages.pages_fd = -1 };
	return s;
}

static int note_shmem(struct rst_ctx *rc, VmaEntry *v)
{
	struct rst_shmem *s = find_shmem(rc, v->shmid);
	uint64_t end = v->pgoff + (v->end - v->start); /* pgoff is in bytes */

	if (!s)
		s = add_shmem(rc, v->shmid);
	if (!s)
		return -ENOMEM;
	s->size = max(s->size, end);
	return 0;
}

int rst_add_memfd(struct rst_ctx *rc, MemfdInodeEntry *mie)
{
	struct rst_shmem *s;

	/* A memfd larger than 128 TiB is a corrupt image, not a memfd. */
	if (find_shmem(rc, mie->shmid) || mie->size > (1ULL << 47)) {
		pr_err("memfd.img: inode %u (%s) is a duplicate or has a bad size\n", mie->shmid,
		       mie->name);
		return -EINVAL;
	}
	s = add_shmem(rc, mie->shmid);
	if (!s)
		return -ENOMEM;
	s->size = PAGE_ALIGN(mie->size);
	s->memfd = mie;
	return 0;
}

/*
 * A dump through a page server leaves only sent-pagemap-PID.img here:
 * say where the pages are rather than that a file is missing.
 */
static int check_pages_here(struct rst_ctx *rc, pid_t pid)
{
	char name[64], sent[64];

	img_name(IMG_PAGEMAP, pid, name, sizeof(name));
	img_name(IMG_SENT_PAGEMAP, pid, sent, sizeof(sent));
	if (!faccessat(rc->dirfd, name, F_OK, 0) || faccessat(rc->dirfd, sent, F_OK, 0))
		return 0;
	pr_err("task %d's pages went to a page server (%s here is only what was sent): put "
	       "the server's %s and pages files beside these images\n", pid, sent, name);
	return -ENOENT;
}

/* Top of the user address space (x86-64, 4-level page tables). */
#define RST_TASK_SIZE 0x7ffffffff000ULL

/*
 * CRIU saves the [vsyscall] page, last (above every user VMA): the kernel
 * maps it into every task, so there is nothing to restore.
 */
static void drop_vsyscall(MmEntry *mm)
{
	VmaEntry *v = mm->n_vmas ? mm->vmas[mm->n_vmas - 1] : NULL;

	if (v && (v->status & VMA_AREA_VSYSCALL) && v->start >= RST_TASK_SIZE) {
		vma_entry__free_unpacked(v, NULL);
		mm->vmas[--mm->n_vmas] = NULL;
	}
}

static int load_mm(struct rst_ctx *rc, struct rst_task *t)
{
	int ret = img_read_one(rc->dirfd, IMG_MM, t->pid, &mm_entry__descriptor,
			       (ProtobufCMessage **)&t->mm);

	if (ret)
		return ret;
	drop_vsyscall(t->mm);
	for (size_t i = 0; i < t->mm->n_vmas; i++) {
		VmaEntry *v = t->mm->vmas[i];

		if (v->start >= v->end || (v->start | v->end) & (PAGE_SIZE - 1) ||
		    v->end > RST_TASK_SIZE || (i && v->start < t->mm->vmas[i - 1]->end)) {
			pr_err("mm-%d.img: bad VMA %#llx-%#llx\n", t->pid,
			       (unsigned long long)v->start, (unsigned long long)v->end);
			return -EINVAL;
		}
		/* A SysV segment is made with the IPC namespace, or is amber's. */
		if ((v->status & VMA_ANON_SHARED) && !(v->status & VMA_AREA_SYSVIPC) &&
		    (ret = note_shmem(rc, v)))
			return ret;
	}
	ret = rst_check_aio_rings(t);
	if (ret)
		return ret;
	ret = img_read_one(rc->dirfd, IMG_FS, t->pid, &fs_entry__descriptor,
			   (ProtobufCMessage **)&t->fs);
	if (ret)
		return ret;
	ret = check_pages_here(rc, t->pid);
	return ret ? ret : pm_chain_load(&t->pages, rc->dirfd, t->pid, t->mm, rc->pages_src);
}

static int load_inventory(struct rst_ctx *rc)
{
	InventoryEntry *ie;
	int ret = img_read_one(rc->dirfd, IMG_INVENTORY, 0, &inventory_entry__descriptor,
			       (ProtobufCMessage **)&ie);

	if (ret)
		return ret;
	if (ie->img_version != CRTOOLS_IMAGES_V1_1) {
		pr_err("inventory.img: unsupported image version %u\n", ie->img_version);
		ret = -EINVAL;
	}
	if (!ret)
		ret = rst_ns_inventory(rc, ie);
	inventory_entry__free_unpacked(ie, NULL);
	return ret;
}

/* The restored inode of a memfd, for the files code (files_rst_ctx.memfd_fd). */
static int memfd_fd(void *arg, const MemfdInodeEntry *mie)
{
	struct rst_ctx *rc = arg;

	for (int i = 0; i < rc->nr_shmems; i++)
		if (rc->shmems[i].memfd == mie)
			return rc->shmems[i].fd;
	return -1;
}

/* A restored task's pid as amber sees it, for the files code (files_rst_ctx.host_pid). */
static pid_t host_pid(void *arg, pid_t pid)
{
	return rst_host_pid(arg, pid);
}

/* fdinfo and files images, through the files code's own context. */
/* The terminals made anew in the tree's mounts: their devpts must be among them. */
static int check_tree_devpts(struct rst_ctx *rc)
{
	uint32_t kdev = 0, index = 0;
	int ret;

	for (int n = 0; (ret = files_tree_pty_dev(&rc->files, n, &kdev, &index)) == 1; n++) {
		bool found = false;

		for (size_t i = 0; i < rc->ns.mnt.nr && !found; i++) {
			const MntEntry *e = rc->ns.mnt.e[i];

			found = e->fstype == FSTYPE__DEVPTS && !e->ext_key && !strcmp(e->root, "/") &&
				e->root_dev == kdev;
		}
		if (!found) {
			pr_err("tty-info.img: the terminal /dev/pts/%u is on a devpts (dev %u:%u) "
			       "that is not among the tree's mounts\n",
			       index, kdev >> 20, kdev & 0xfffff);
			return -EINVAL;
		}
	}
	if (ret)
		pr_err("tty-info.img: a terminal of the tree has no device saved\n");
	return ret;
}

static int load_files(struct rst_ctx *rc)
{
	cleanup_free struct files_task *ft = xzalloc(sizeof(*ft) * (rc->nr_tasks + 1));
	int ret;

	if (!ft)
		return -ENOMEM;
	for (int i = 0; i < rc->nr_tasks; i++)
		ft[i] = (struct files_task){ .pid = rc->tasks[i].pid,
					     .files_id = rc->tasks[i].files_id,
					     .zombie = rc->tasks[i].zombie };
	rc->files = (struct files_rst_ctx){ .dirfd = rc->dirfd,
					    .shell_job = rc->opts && rc->opts->shell_job,
					    .orphan_pts = rc->opts && rc->opts->orphan_pts,
					    .ext_unix_sk = rc->opts && rc->opts->ext_unix_sk,
					    .file_locks = rc->opts && rc->opts->file_locks,
					    .tcp_established = rc->opts && rc->opts->tcp_established,
					    .tcp_close = rc->opts && rc->opts->tcp_close,
					    .svc_fd_base = rc->svc_fd_base,
					    .status_fd = rc->status_fd,
					    .memfd_fd = memfd_fd, .memfd_arg = rc,
					    .host_pid = host_pid, .host_pid_arg = rc,
					    .defer_paths = rc->ns.mnt.nr > 0,
					    .own_ipc = rc->ns.ipc != NULL,
					    .inherit_fds = rc->opts ? rc->opts->inherit_fds : NULL,
					    .nr_inherit_fds = rc->opts ? rc->opts->nr_inherit_fds : 0,
					    .ext_netns_key = rc->ns.net.ext_key,
					    .unchecked = &rc->unchecked };
	ret = files_load(&rc->files, ft, rc->nr_tasks);
	/* Its paths are the tree's mounts': none may be made among amber's. */
	if (!ret && rc->ns.mnt.nr)
		ret = files_check_mntns(&rc->files);
	if (!ret && rc->ns.mnt.nr)
		ret = check_tree_devpts(rc);
	return ret;
}

/* A packet socket's rings mapped (VMA_AREA_SOCKET): the socket is in files.img. */
static int check_socket_vmas(struct rst_ctx *rc, struct rst_task *t)
{
	for (size_t i = 0; !t->zombie && i < t->mm->n_vmas; i++) {
		VmaEntry *v = t->mm->vmas[i];
		int ret;

		if (!(v->status & VMA_AREA_SOCKET))
			continue;
		if (!(v->flags & MAP_SHARED) || (v->status & (VMA_ANON_PRIVATE | VMA_FILE_PRIVATE |
							      VMA_ANON_SHARED | VMA_FILE_SHARED))) {
			pr_err("mm-%d.img: socket VMA %#llx is malformed\n", t->pid,
			       (unsigned long long)v->start);
			return -EINVAL;
		}
		ret = files_packet_map_check(&rc->files, v->shmid, v->end - v->start, v->pgoff);
		if (ret) {
			pr_err("mm-%d.img: socket VMA %#llx refused\n", t->pid,
			       (unsigned long long)v->start);
			return ret;
		}
	}
	return 0;
}

/*
 * Post-copy serves one layer: a page server has no parent images. (A lazy
 * restore from local images serves a chain: the lazy view of pm_chain.)
 */
static int check_postcopy_chain(struct rst_ctx *rc)
{
	for (int i = 0; i < rc->nr_tasks; i++)
		if (rc->tasks[i].pages.nr_layers > 1) {
			pr_err("task %d's pages are an incremental chain (parent images): "
			       "post-copy from a page server serves one dump, not a chain; "
			       "dump without --prev-images-dir for post-copy\n",
			       rc->tasks[i].pid);
			return -ENOTSUP;
		}
	return 0;
}

int rst_load(struct rst_ctx *rc)
{
	/* Thousands of tcp-stream images are read once: checked as they are loaded. */
	int ret = img_sums_check_but(rc->dirfd, "tcp-stream-", &rc->unchecked);

	if (!ret)
		ret = load_inventory(rc);

	if (!ret)
		ret = load_pstree(rc);
	for (int i = 0; i < rc->nr_tasks && !ret; i++) {
		struct rst_task *t = &rc->tasks[i];

		ret = load_cores(rc, t);
		if (!ret && !t->zombie)
			ret = load_mm(rc, t);
	}
	/* Before the namespaces: which tasks are in nested pid namespaces. */
	if (!ret)
		ret = rst_pidns_check(rc);
	if (!ret)
		ret = rst_ns_load(rc);
	if (!ret)
		ret = rst_ipc_check_attaches(rc);
	if (!ret)
		ret = rst_cgroup_load(rc);
	if (!ret)
		ret = rst_load_seccomp(rc);
	for (int i = 0; i < rc->nr_tasks && !ret; i++)
		if (!rc->tasks[i].zombie)
			ret = rst_check_seccomp(rc, &rc->tasks[i]);
	/* Before the shared memory: memfd inodes are shared memory too. */
	if (!ret)
		ret = load_files(rc);
	for (int i = 0; i < rc->nr_tasks && !ret; i++)
		ret = check_socket_vmas(rc, &rc->tasks[i]);
	for (int i = 0; !ret && files_memfd_at(&rc->files, i); i++)
		ret = rst_add_memfd(rc, files_memfd_at(&rc->files, i));
	for (int i = 0; i < rc->nr_shmems && !ret; i++) {
		ret = load_shmem_pages(rc, &rc->shmems[i]);
	}
	if (!ret && rc->opts && rc->opts->lazy && rc->pages_src)
		ret = check_postcopy_chain(rc);
	return ret;
}

void rst_free(struct rst_ctx *rc)
{
	img_sums_free(&rc->unchecked);
	for (int i = 0; i < rc->nr_tasks; i++) {
		struct rst_task *t = &rc->tasks[i];

		for (int j = 0; t->cores && j < t->nr_threads; j++)
			if (t->cores[j])
				core_entry__free_unpacked(t->cores[j], NULL);
		free(t->cores);
		if (t->mm)
			mm_entry__free_unpacked(t->mm, NULL);
		if (t->fs)
			fs_entry__free_unpacked(t->fs, NULL);
		pstree_entry__free_unpacked(t->pe, NULL);
		pm_chain_free(&t->pages);
		free(t->children);
		free(t->premap);
	}
	free(rc->tasks);
	rst_ns_free(&rc->ns);
	if (rc->cg)
		cgroup_entry__free_unpacked(rc->cg, NULL);
	rc->cg = NULL;
	free(rc->cgns_dir);
	rc->cgns_dir = NULL;
	rst_cgroup_forget(rc);
	for (int i = 0; i < rc->nr_shmems; i++) {
		pm_layer_free(&rc->shmems[i].pages);
		if (rc->shmems[i].fd >= 0)
			close(rc->shmems[i].fd);
	}
	free(rc->shmems);
	files_rst_free(&rc->files);
	if (rc->seccomp)
		seccomp_entry__free_unpacked(rc->seccomp, NULL);
	rc->seccomp = NULL;
}
