// SPDX-License-Identifier: MIT
/*
 * The SysV objects of the tree's own IPC namespace, in CRIU's images:
 *
 *   ipcns-shm-<ns>.img  ipc_shm_entry per segment (in_pagemaps); its pages
 *                       in pagemap-shmem-<segment id>.img, holes left out
 *   ipcns-sem-<ns>.img  ipc_sem_entry per set, then its u16 values raw
 *   ipcns-msg-<ns>.img  ipc_msg_entry per queue, then each message in
 *                       queue order: ipc_msg {mtype, msize} and its text raw
 *
 * amber's thread enters the namespace for the reading (the objects are
 * only reachable from inside it) and comes back. Messages are copied
 * with MSG_COPY, which leaves the queue as it was. A task's attach of a
 * segment is a VMA_AREA_SYSVIPC VMA naming the segment id (memory.c);
 * a segment marked for removal while attached (SHM_DEST) is saved too,
 * and removed again once the restored tasks have attached it.
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
#include <sys/statfs.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "dump/dump.h"
#include "dump/memory.h"
#include "dump/ns.h"
#include "image/image.h"
#include "ipc-msg.pb-c.h"
#include "ipc-sem.pb-c.h"
#include "ipc-shm.pb-c.h"
#include "ipc-var.pb-c.h"

#ifndef MSG_COPY
#define MSG_COPY 040000
#endif
#define HUGETLBFS_MAGIC 0x958458f6
#define IPC_PAD(n, a) (((n) + (a) - 1) / (a) * (a))

union semun {
	int val;
	struct semid_ds *buf;
	unsigned short *array;
};

static void fill_desc(IpcDescEntry *d, int id, const struct ipc_perm *p)
{
	d->id = id;
	d->key = p->__key;
	d->uid = p->uid;
	d->gid = p->gid;
	d->cuid = p->cuid;
	d->cgid = p->cgid;
	d->mode = p->mode;
}

static int write_padded(struct img *img, const void *data, size_t len, size_t align)
{
	static const char zeros[8];
	size_t pad = IPC_PAD(len, align) - len;
	int ret = len ? img_write_raw(img, data, len) : 0;

	return ret || !pad ? ret : img_write_raw(img, zeros, pad);
}

/*
 * The segment's shmem file, through an attach of our own that is gone
 * again; and the key it was made with, in its name ("/SYSV%08x").
 */
static int shm_open_contents(int id, uint64_t size, char *path, size_t len, uint32_t *name_key)
{
	void *addr = shmat(id, NULL, SHM_RDONLY);
	char name[64] = "";
	struct statfs sfs;
	int fd;

	if (addr == (void *)-1)
		return -errno;
	snprintf(path, len, "/proc/self/map_files/%lx-%lx", (unsigned long)addr,
		 (unsigned long)addr + PAGE_ALIGN(size));
	if (readlink(path, name, sizeof(name) - 1) < 0 || sscanf(name, "/SYSV%x", name_key) != 1)
		*name_key = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		fd = -errno;
	shmdt(addr);
	if (fd >= 0 && !fstatfs(fd, &sfs) && sfs.f_type == HUGETLBFS_MAGIC) {
		close(fd);
		return -EOPNOTSUPP;
	}
	return fd;
}

static int dump_one_shm(struct dump_ctx *dc, struct img *img, int id, const struct shmid_ds *ds)
{
	IpcShmEntry e = IPC_SHM_ENTRY__INIT;
	IpcDescEntry d = IPC_DESC_ENTRY__INIT;
	char path[80];
	int fd, ret;

	fill_desc(&d, id, &ds->shm_perm);
	e.desc = &d;
	e.size = ds->shm_segsz;
	e.has_in_pagemaps = e.in_pagemaps = true;
	fd = shm_open_contents(id, e.size, path, sizeof(path), &e.amber_name_key);
	e.has_amber_name_key = fd >= 0 && e.amber_name_key != d.key;
	if (fd < 0) {
		pr_err("SysV shared memory segment (key %#x, id %d)%s: %s\n", d.key, id,
		       fd == -EOPNOTSUPP ? " uses huge pages" : " can't be read",
		       fd == -EOPNOTSUPP ? "not supported" : strerror(-fd));
		return fd;
	}
	ret = img_write_msg(img, &e.base);
	if (!ret)
		ret = dump_shmem_fd(dc, fd, path, id);
	close(fd);
	if (!ret) {
		dc->ns.shm[dc->ns.nr_shm].id = id;
		dc->ns.shm[dc->ns.nr_shm++].size = e.size;
	}
	pr_info("SysV shm id %d key %#x mode %#o size %llu%s\n", id, d.key, d.mode,
		(unsigned long long)e.size, (d.mode & SHM_DEST) ? " (removed, still attached)" : "");
	return ret;
}

static int dump_shm(struct dump_ctx *dc)
{
	struct shm_info info;
	int max = shmctl(0, SHM_INFO, (struct shmid_ds *)&info), ret = 0;
	struct img *img = img_open(dc->dirfd, IMG_IPCNS_SHM, true, dc->ns.ipc_ns_id);

	if (!img)
		return -errno;
	if (max >= 0)
		dc->ns.shm = arena_array(&dc->arena, struct dump_shm_seg, max + 1);
	if (max < 0 || !dc->ns.shm)
		ret = max < 0 ? -errno : -ENOMEM;
	for (int i = 0; i <= max && !ret; i++) {
		struct shmid_ds ds;
		int id = shmctl(i, SHM_STAT, &ds);

		if (id >= 0)
			ret = dump_one_shm(dc, img, id, &ds);
		else if (errno != EINVAL)
			ret = -errno;
	}
	return img_close(img) ? (ret ? ret : -EIO) : ret;
}

static int dump_one_sem(struct img *img, int id, const struct semid_ds *ds)
{
	IpcSemEntry e = IPC_SEM_ENTRY__INIT;
	IpcDescEntry d = IPC_DESC_ENTRY__INIT;
	cleanup_free unsigned short *vals = calloc(IPC_PAD(ds->sem_nsems, 4), sizeof(*vals));
	int ret;

	if (!vals)
		return -ENOMEM;
	fill_desc(&d, id, &ds->sem_perm);
	e.desc = &d;
	e.nsems = ds->sem_nsems;
	if (semctl(id, 0, GETALL, (union semun){ .array = vals }) < 0) {
		pr_perror("can't read SysV semaphore set (key %#x, id %d)", d.key, id);
		return -errno;
	}
	ret = img_write_msg(img, &e.base);
	pr_info("SysV sem id %d key %#x mode %#o nsems %u\n", id, d.key, d.mode, e.nsems);
	return ret ? ret : write_padded(img, vals, e.nsems * sizeof(*vals), 8);
}

static int dump_sem(struct dump_ctx *dc)
{
	struct seminfo info;
	int max = semctl(0, 0, SEM_INFO, (union semun){ .buf = (struct semid_ds *)&info });
	int ret = max < 0 ? -errno : 0;
	struct img *img = img_open(dc->dirfd, IMG_IPCNS_SEM, true, dc->ns.ipc_ns_id);

	if (!img)
		return -errno;
	for (int i = 0; i <= max && !ret; i++) {
		struct semid_ds ds;
		int id = semctl(i, 0, SEM_STAT, (union semun){ .buf = &ds });

		if (id >= 0)
			ret = dump_one_sem(img, id, &ds);
		else if (errno != EINVAL)
			ret = -errno;
	}
	return img_close(img) ? (ret ? ret : -EIO) : ret;
}

/* Each message by its index, copied: the queue keeps it. */
static int dump_messages(struct img *img, int id, const struct msqid_ds *ds)
{
	size_t max = ds->__msg_cbytes;
	cleanup_free long *buf = malloc(sizeof(long) + max + 1);

	if (!buf)
		return -ENOMEM;
	for (msgqnum_t n = 0; n < ds->msg_qnum; n++) {
		IpcMsg m = IPC_MSG__INIT;
		ssize_t len = msgrcv(id, buf, max, n, IPC_NOWAIT | MSG_COPY);
		int ret;

		if (len < 0) {
			int err = errno;

			pr_err("can't copy message %lu of SysV message queue (key %#x, id %d): %s%s\n",
			       (unsigned long)n, ds->msg_perm.__key, id, strerror(err),
			       err == ENOSYS ? " (MSG_COPY needs CONFIG_CHECKPOINT_RESTORE)" : "");
			return -err;
		}
		m.mtype = buf[0];
		m.msize = len;
		ret = img_write_msg(img, &m.base);
		if (!ret)
			ret = write_padded(img, buf + 1, len, 8);
		if (ret)
			return ret;
	}
	return 0;
}

static int dump_msg(struct dump_ctx *dc)
{
	struct msginfo info;
	int max = msgctl(0, MSG_INFO, (struct msqid_ds *)&info), ret = max < 0 ? -errno : 0;
	struct img *img = img_open(dc->dirfd, IMG_IPCNS_MSG, true, dc->ns.ipc_ns_id);

	if (!img)
		return -errno;
	for (int i = 0; i <= max && !ret; i++) {
		IpcMsgEntry e = IPC_MSG_ENTRY__INIT;
		IpcDescEntry d = IPC_DESC_ENTRY__INIT;
		struct msqid_ds ds;
		int id = msgctl(i, MSG_STAT, &ds);

		if (id < 0) {
			ret = errno == EINVAL ? 0 : -errno;
			continue;
		}
		fill_desc(&d, id, &ds.msg_perm);
		e.desc = &d;
		e.qbytes = ds.msg_qbytes;
		e.qnum = ds.msg_qnum;
		pr_info("SysV msg id %d key %#x mode %#o: %u messages\n", id, d.key, d.mode, e.qnum);
		ret = img_write_msg(img, &e.base);
		if (!ret)
			ret = dump_messages(img, id, &ds);
	}
	return img_close(img) ? (ret ? ret : -EIO) : ret;
}

static int read_next_id(const char *kind, protobuf_c_boolean *has, uint32_t *v)
{
	char path[64], buf[32];
	int fd, n;

	snprintf(path, sizeof(path), "/proc/sys/kernel/%s_next_id", kind);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -EIO;
	buf[n] = 0;
	/* -1, the kernel's "none chosen", can't be written back: left out (as CRIU). */
	*has = atol(buf) >= 0;
	*v = atol(buf);
	return 0;
}

int dump_ipc_sysv(struct dump_ctx *dc, pid_t root, struct IpcVarEntry *ie)
{
	int ret = dump_shm(dc);

	if (!ret)
		ret = dump_sem(dc);
	if (!ret)
		ret = dump_msg(dc);
	if (!ret)
		ret = read_next_id("shm", &ie->has_shm_next_id, &ie->shm_next_id);
	if (!ret)
		ret = read_next_id("sem", &ie->has_sem_next_id, &ie->sem_next_id);
	if (!ret)
		ret = read_next_id("msg", &ie->has_msg_next_id, &ie->msg_next_id);
	if (ret)
		pr_err("the SysV objects of the IPC namespace of %d can't be saved\n", root);
	return ret;
}
