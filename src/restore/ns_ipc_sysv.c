// SPDX-License-Identifier: MIT
/*
 * The SysV objects of the tree's IPC namespace (ns.h: struct rst_ipc):
 * read and checked with the other images, made again by the restored
 * root right after its new IPC namespace, before it forks. Each gets its
 * saved id by writing it to kernel.{shm,sem,msg}_next_id just before the
 * object is made. The tasks attach the segments in the restorer
 * (VMA_AREA_SYSVIPC, restorer.c); a segment saved as removed (SHM_DEST)
 * is removed again by amber once they all have (rst_ipc_finish).
 */
#define LOG_PREFIX "ns: "
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <unistd.h>

#include "base/csum.h"
#include "base/log.h"
#include "base/util.h"
#include "image/image.h"
#include "image/magic.h"
#include "mem/vma.h"
#include "restore/ns.h"
#include "restore/restore.h"
#include "ipc-msg.pb-c.h"
#include "ipc-sem.pb-c.h"
#include "ipc-shm.pb-c.h"
#include "ipc-var.pb-c.h"

#define IPC_PAD(n, a) (((n) + (a) - 1) / (a) * (a))
/* No SysV object is larger than this: a bigger size is a corrupt image. */
#define IPC_MAX_SIZE (1ULL << 40)

union semun {
	int val;
	struct semid_ds *buf;
	unsigned short *array;
};

static int read_padded(struct img *img, void *buf, size_t len, size_t align)
{
	char pad[8];
	size_t n = IPC_PAD(len, align) - len;
	int ret = len ? img_read_raw(img, buf, len) : 0;

	return ret || !n ? ret : img_read_raw(img, pad, n);
}

static int load_shm(struct rst_ctx *rc, struct img *img, struct rst_ipc *ipc)
{
	IpcShmEntry *e;
	int ret;

	while ((ret = img_read_msg(img, &ipc_shm_entry__descriptor, (ProtobufCMessage **)&e)) > 0) {
		struct rst_ipc_shm *s = xrealloc_array(ipc->shm, ipc->nr_shm + 1, sizeof(*s));

		if (!s) {
			ipc_shm_entry__free_unpacked(e, NULL);
			return -ENOMEM;
		}
		ipc->shm = s;
		s = &ipc->shm[ipc->nr_shm++];
		memset(s, 0, sizeof(*s));
		s->e = e;
		s->pages.pages_fd = -1;
		if (!e->in_pagemaps || e->hugetlb_flag || !e->size || e->size > IPC_MAX_SIZE) {
			pr_err("%s: segment id %u: %s\n", img->name, e->desc->id,
			       !e->in_pagemaps ? "contents inline (older CRIU) are not supported"
			       : e->hugetlb_flag ? "huge pages are not supported" : "bad size");
			return -EINVAL;
		}
		ret = pm_layer_load(&s->pages, rc->dirfd, IMG_SHMEM_PAGEMAP, e->desc->id,
				    rc->pages_src);
		for (int i = 0; !ret && i < s->pages.nr; i++) {
			const struct pm_ent *pe = &s->pages.ents[i];

			if (pe->flags != PE_PRESENT ||
			    pe->vaddr + (uint64_t)pe->nr_pages * PAGE_SIZE > PAGE_ALIGN(e->size)) {
				pr_err("pagemap-shmem-%u.img: entry %#llx+%u pages is beyond the "
				       "segment or not present\n", e->desc->id,
				       (unsigned long long)pe->vaddr, pe->nr_pages);
				ret = -EINVAL;
			}
		}
		if (ret)
			return ret;
	}
	return ret;
}

static int load_sem(struct img *img, struct rst_ipc *ipc)
{
	IpcSemEntry *e;
	int ret;

	while ((ret = img_read_msg(img, &ipc_sem_entry__descriptor, (ProtobufCMessage **)&e)) > 0) {
		struct rst_ipc_sem *s = xrealloc_array(ipc->sem, ipc->nr_sem + 1, sizeof(*s));

		if (!s) {
			ipc_sem_entry__free_unpacked(e, NULL);
			return -ENOMEM;
		}
		ipc->sem = s;
		s = &ipc->sem[ipc->nr_sem++];
		s->e = e;
		s->vals = e->nsems <= 65536 ? calloc(e->nsems + 1, sizeof(*s->vals)) : NULL;
		if (!s->vals)
			return e->nsems <= 65536 ? -ENOMEM : -EINVAL;
		ret = read_padded(img, s->vals, e->nsems * sizeof(*s->vals), 8);
		if (ret)
			return ret;
	}
	return ret;
}

static int load_msgs(struct img *img, struct rst_ipc_msq *q)
{
	q->msgs = calloc(q->e->qnum + 1, sizeof(*q->msgs));
	if (!q->msgs)
		return -ENOMEM;
	for (uint32_t i = 0; i < q->e->qnum; i++) {
		IpcMsg *m;
		int ret = img_read_msg(img, &ipc_msg__descriptor, (ProtobufCMessage **)&m);

		if (ret <= 0)
			return ret ? ret : -EINVAL;
		q->msgs[i].mtype = m->mtype;
		q->msgs[i].msize = m->msize;
		ipc_msg__free_unpacked(m, NULL);
		if (q->msgs[i].msize > IMG_MAX_ENTRY || q->msgs[i].mtype <= 0)
			return -EINVAL;
		q->msgs[i].text = malloc(sizeof(long) + q->msgs[i].msize + 8);
		if (!q->msgs[i].text)
			return -ENOMEM;
		*(long *)q->msgs[i].text = q->msgs[i].mtype;
		ret = read_padded(img, (long *)q->msgs[i].text + 1, q->msgs[i].msize, 8);
		if (ret)
			return ret;
	}
	return 0;
}

static int load_msg(struct img *img, struct rst_ipc *ipc)
{
	IpcMsgEntry *e;
	int ret;

	while ((ret = img_read_msg(img, &ipc_msg_entry__descriptor, (ProtobufCMessage **)&e)) > 0) {
		struct rst_ipc_msq *q = xrealloc_array(ipc->msq, ipc->nr_msq + 1, sizeof(*q));

		if (!q) {
			ipc_msg_entry__free_unpacked(e, NULL);
			return -ENOMEM;
		}
		ipc->msq = q;
		q = &ipc->msq[ipc->nr_msq++];
		q->e = e;
		q->msgs = NULL;
		if (e->qnum > 1000000 || (ret = load_msgs(img, q))) {
			pr_err("%s: queue id %u: its messages are short or corrupt\n", img->name,
			       e->desc->id);
			return ret ? ret : -EINVAL;
		}
	}
	return ret;
}

/* Called by rst_ns_load_ipc(): a missing image (an older dump) holds no object. */
int rst_ipc_load(struct rst_ctx *rc, uint32_t id)
{
	static const enum img_type types[] = { IMG_IPCNS_SHM, IMG_IPCNS_SEM, IMG_IPCNS_MSG };
	struct rst_ipc *ipc = &rc->ns.ipc_objs;
	int ret = 0;

	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]) && !ret; i++) {
		struct img *img = img_open_optional(rc->dirfd, types[i], id);

		if (!img) {
			ret = errno == ENOENT ? 0 : -errno;
			continue;
		}
		ret = types[i] == IMG_IPCNS_SHM ? load_shm(rc, img, ipc) :
		      types[i] == IMG_IPCNS_SEM ? load_sem(img, ipc) : load_msg(img, ipc);
		if (ret)
			pr_err("%s can't be read: %s\n", img->name, strerror(-ret));
		img_close(img);
	}
	return ret;
}

void rst_ipc_free(struct rst_ipc *ipc)
{
	for (size_t i = 0; i < ipc->nr_shm; i++) {
		pm_layer_free(&ipc->shm[i].pages);
		ipc_shm_entry__free_unpacked(ipc->shm[i].e, NULL);
	}
	for (size_t i = 0; i < ipc->nr_sem; i++) {
		free(ipc->sem[i].vals);
		ipc_sem_entry__free_unpacked(ipc->sem[i].e, NULL);
	}
	for (size_t i = 0; i < ipc->nr_msq; i++) {
		for (uint32_t j = 0; ipc->msq[i].msgs && j < ipc->msq[i].e->qnum; j++)
			free(ipc->msq[i].msgs[j].text);
		free(ipc->msq[i].msgs);
		ipc_msg_entry__free_unpacked(ipc->msq[i].e, NULL);
	}
	free(ipc->shm);
	free(ipc->sem);
	free(ipc->msq);
	memset(ipc, 0, sizeof(*ipc));
}

int rst_ipc_shm_size(struct rst_ctx *rc, pid_t pid, uint64_t shmid, uint64_t *size)
{
	struct shmid_ds ds;

	if (rc->ns.ipc) {
		for (size_t i = 0; i < rc->ns.ipc_objs.nr_shm; i++)
			if (rc->ns.ipc_objs.shm[i].e->desc->id == shmid) {
				*size = rc->ns.ipc_objs.shm[i].e->size;
				return 0;
			}
		pr_err("mm-%d.img: SysV segment id %llu is not in the tree's ipcns-shm image\n",
		       pid, (unsigned long long)shmid);
		return -EINVAL;
	}
	if (shmid > INT32_MAX || shmctl(shmid, IPC_STAT, &ds) < 0) {
		pr_err("mm-%d.img: SysV segment id %llu of amber's IPC namespace is gone\n", pid,
		       (unsigned long long)shmid);
		return -ENOENT;
	}
	*size = ds.shm_segsz;
	return 0;
}

int rst_ipc_check_attaches(struct rst_ctx *rc)
{
	for (int i = 0; i < rc->nr_tasks; i++) {
		const MmEntry *mm = rc->tasks[i].mm;

		for (size_t j = 0; mm && j < mm->n_vmas; j++) {
			const VmaEntry *v = mm->vmas[j];
			uint64_t size;
			int ret;

			if (!(v->status & VMA_AREA_SYSVIPC))
				continue;
			ret = rst_ipc_shm_size(rc, rc->tasks[i].pid, v->shmid, &size);
			if (ret)
				return ret;
			if ((v->pgoff & (PAGE_SIZE - 1)) ||
			    v->pgoff + (v->end - v->start) > PAGE_ALIGN(size)) {
				pr_err("mm-%d.img: attach of SysV segment %llu at %#llx is beyond "
				       "its %llu bytes\n", rc->tasks[i].pid,
				       (unsigned long long)v->shmid, (unsigned long long)v->start,
				       (unsigned long long)size);
				return -EINVAL;
			}
		}
	}
	return 0;
}

/* The next object made gets @id: the kernel takes it once, then forgets it. */
static int choose_id(const char *kind, uint32_t id)
{
	char name[32];

	snprintf(name, sizeof(name), "kernel/%s_next_id", kind);
	return rst_write_sysctl(name, "%u", id);
}

static int check_id(const char *what, int got, const IpcDescEntry *d)
{
	if (got < 0) {
		pr_perror("can't make SysV %s (key %#x, id %u)", what, d->key, d->id);
		return -errno;
	}
	if ((uint32_t)got != d->id) {
		pr_err("SysV %s (key %#x) got id %d, not its saved %u\n", what, d->key, got, d->id);
		return -EEXIST;
	}
	return 0;
}

static void set_perm(struct ipc_perm *p, const IpcDescEntry *d)
{
	p->uid = d->uid;
	p->gid = d->gid;
	p->mode = d->mode & 0777;
}

static int shm_fill(struct rst_ipc_shm *s)
{
	char *addr = shmat(s->e->desc->id, NULL, 0);
	int ret = 0;

	if (addr == (void *)-1)
		return -errno;
	for (int i = 0; !ret && i < s->pages.nr; i++) {
		const struct pm_ent *e = &s->pages.ents[i];
		size_t len = (size_t)e->nr_pages * PAGE_SIZE;

		if (pread_full(s->pages.pages_fd, addr + e->vaddr, len, e->off) ||
		    (e->csum_ver &&
		     amber_csum_ver(addr + e->vaddr, len, e->vaddr, e->csum_ver) != e->csum)) {
			pr_err("SysV segment %u: data at %#llx is short or fails its checksum\n",
			       s->e->desc->id, (unsigned long long)e->vaddr);
			ret = -EINVAL;
		}
	}
	shmdt(addr);
	return ret;
}

/*
 * A removed segment is made under the key it was made with, so that its
 * attaches keep their names (/SYSV<key>); rst_ipc_finish() removes it
 * again. If another segment has that key by now, it is made unnamed (a
 * key found taken leaves the chosen id unused).
 */
static int shm_get(const IpcShmEntry *e)
{
	const IpcDescEntry *d = e->desc;
	int flags = (d->mode & 0777) | IPC_CREAT | IPC_EXCL, id;

	if ((d->mode & SHM_DEST) && e->has_amber_name_key) {
		id = shmget((key_t)e->amber_name_key, e->size, flags);
		if (id >= 0 || errno != EEXIST)
			return id;
	}
	return shmget((key_t)d->key, e->size, flags);
}

static int make_shm(struct rst_ctx *rc, struct rst_ipc_shm *s)
{
	const IpcDescEntry *d = s->e->desc;
	uint64_t shmmax = rc->ns.ipc->shm_ctlmax;
	struct shmid_ds ds;
	int ret = 0, id;

	/* Made under a saved shmmax since lowered: allowed for as long as it takes. */
	if (s->e->size > shmmax)
		ret = rst_write_sysctl("kernel/shmmax", "%llu", (unsigned long long)s->e->size);
	if (!ret)
		ret = choose_id("shm", d->id);
	if (ret)
		return ret;
	id = shm_get(s->e);
	ret = check_id("shared memory segment", id, d);
	if (!ret && s->e->size > shmmax)
		ret = rst_write_sysctl("kernel/shmmax", "%llu", (unsigned long long)shmmax);
	if (ret)
		return ret;
	if (shmctl(id, IPC_STAT, &ds))
		return -errno;
	set_perm(&ds.shm_perm, d);
	if (shmctl(id, IPC_SET, &ds) || ((d->mode & SHM_LOCKED) && shmctl(id, SHM_LOCK, NULL))) {
		pr_perror("can't set SysV segment %u", d->id);
		return -errno;
	}
	return shm_fill(s);
}

static int make_sem(struct rst_ipc_sem *s)
{
	const IpcDescEntry *d = s->e->desc;
	struct semid_ds ds;
	int ret = choose_id("sem", d->id), id;

	if (ret)
		return ret;
	id = semget((key_t)d->key, s->e->nsems, (d->mode & 0777) | IPC_CREAT | IPC_EXCL);
	ret = check_id("semaphore set", id, d);
	if (ret)
		return ret;
	if (semctl(id, 0, IPC_STAT, (union semun){ .buf = &ds }))
		return -errno;
	set_perm(&ds.sem_perm, d);
	if (semctl(id, 0, IPC_SET, (union semun){ .buf = &ds }) ||
	    semctl(id, 0, SETALL, (union semun){ .array = s->vals })) {
		pr_perror("can't set SysV semaphore set %u", d->id);
		return -errno;
	}
	return 0;
}

/* Room for every message first (a queue may hold more than its qbytes now). */
static int msq_send_all(int id, struct rst_ipc_msq *q, uint32_t msgmax)
{
	uint64_t total = 0, biggest = 0;
	struct msqid_ds ds;
	int ret = 0;

	for (uint32_t i = 0; i < q->e->qnum; i++) {
		total += q->msgs[i].msize;
		biggest = max(biggest, (uint64_t)q->msgs[i].msize);
	}
	if (msgctl(id, IPC_STAT, &ds))
		return -errno;
	set_perm(&ds.msg_perm, q->e->desc);
	ds.msg_qbytes = max((uint64_t)q->e->qbytes, total);
	if (msgctl(id, IPC_SET, &ds))
		return -errno;
	if (biggest > msgmax)
		ret = rst_write_sysctl("kernel/msgmax", "%llu", (unsigned long long)biggest);
	for (uint32_t i = 0; i < q->e->qnum && !ret; i++)
		if (msgsnd(id, q->msgs[i].text, q->msgs[i].msize, IPC_NOWAIT))
			ret = -errno;
	if (biggest > msgmax && rst_write_sysctl("kernel/msgmax", "%u", msgmax))
		ret = ret ? ret : -EIO;
	ds.msg_qbytes = q->e->qbytes;
	if (!ret && msgctl(id, IPC_SET, &ds))
		ret = -errno;
	return ret;
}

static int make_msq(struct rst_ctx *rc, struct rst_ipc_msq *q)
{
	const IpcDescEntry *d = q->e->desc;
	int ret = choose_id("msg", d->id), id;

	if (ret)
		return ret;
	id = msgget((key_t)d->key, (d->mode & 0777) | IPC_CREAT | IPC_EXCL);
	ret = check_id("message queue", id, d);
	if (!ret)
		ret = msq_send_all(id, q, rc->ns.ipc->msg_ctlmax);
	if (ret)
		pr_err("can't fill SysV message queue %u: %s\n", d->id, strerror(-ret));
	return ret;
}

/* In the restored root, in its new IPC namespace with the saved sysctls. */
int rst_ipc_make(struct rst_ctx *rc)
{
	struct rst_ipc *ipc = &rc->ns.ipc_objs;
	const IpcVarEntry *ie = rc->ns.ipc;
	int ret = 0;

	/* The removed ones last: a live one may have the key they were made with. */
	for (int dest = 0; dest < 2; dest++)
		for (size_t i = 0; i < ipc->nr_shm && !ret; i++)
			if (!(ipc->shm[i].e->desc->mode & SHM_DEST) == !dest)
				ret = make_shm(rc, &ipc->shm[i]);
	for (size_t i = 0; i < ipc->nr_sem && !ret; i++)
		ret = make_sem(&ipc->sem[i]);
	for (size_t i = 0; i < ipc->nr_msq && !ret; i++)
		ret = make_msq(rc, &ipc->msq[i]);
	/* Last: each object made above took the one it was given. */
	if (!ret && ie->has_shm_next_id)
		ret = choose_id("shm", ie->shm_next_id);
	if (!ret && ie->has_sem_next_id)
		ret = choose_id("sem", ie->sem_next_id);
	if (!ret && ie->has_msg_next_id)
		ret = choose_id("msg", ie->msg_next_id);
	return ret;
}

/* amber's thread, in the tree's IPC namespace for a moment. */
int rst_ipc_finish(struct rst_ctx *rc, pid_t host_root)
{
	struct rst_ipc *ipc = &rc->ns.ipc_objs;
	cleanup_close int own = -1, tree = -1;
	char path[64];
	int ret = 0;
	size_t i;

	for (i = 0; i < ipc->nr_shm && !(ipc->shm[i].e->desc->mode & SHM_DEST); i++)
		;
	if (!rc->ns.ipc || i == ipc->nr_shm)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/ns/ipc", host_root);
	own = open("/proc/thread-self/ns/ipc", O_RDONLY | O_CLOEXEC);
	tree = open(path, O_RDONLY | O_CLOEXEC);
	if (own < 0 || tree < 0 || setns(tree, CLONE_NEWIPC)) {
		pr_perror("can't enter the restored IPC namespace");
		return -errno;
	}
	for (; i < ipc->nr_shm && !ret; i++)
		if ((ipc->shm[i].e->desc->mode & SHM_DEST) &&
		    shmctl(ipc->shm[i].e->desc->id, IPC_RMID, NULL)) {
			pr_perror("can't remove SysV segment %u again", ipc->shm[i].e->desc->id);
			ret = -errno;
		}
	if (setns(own, CLONE_NEWIPC)) {
		pr_perror("can't go back to amber's IPC namespace");
		ret = -errno;
	}
	return ret;
}
