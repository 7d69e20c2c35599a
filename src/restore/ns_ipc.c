// SPDX-License-Identifier: MIT
/* The tree's own IPC namespace: a new one with the saved sysctls and objects (ns_ipc_sysv.c). */
#define LOG_PREFIX "ns: "
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "image/image.h"
#include "restore/ns.h"
#include "restore/restore.h"
#include "ipc-var.pb-c.h"

int rst_ns_load_ipc(struct rst_ctx *rc, uint32_t id)
{
	IpcVarEntry *ie;
	int ret = img_read_one(rc->dirfd, IMG_IPC_VAR, id, &ipc_var_entry__descriptor,
			       (ProtobufCMessage **)&ie);

	if (ret) {
		pr_err("ipcns-var-%u.img (named by core-%d.img) can't be read\n", id,
		       rc->tasks[0].pid);
		return ret;
	}
	rc->ns.ipc = ie;
	if (ie->n_sem_ctls != 4) {
		pr_err("ipcns-var-%u.img: %zu sem_ctls, the kernel has 4\n", id, ie->n_sem_ctls);
		return -EINVAL;
	}
	return 0;
}

int rst_write_sysctl(const char *name, const char *fmt, ...)
{
	char path[80], buf[96];
	va_list ap;
	int fd, n, ret = 0;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	snprintf(path, sizeof(path), "/proc/sys/%s", name);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0) {
		pr_perror("can't open %s", path);
		return -errno;
	}
	if (write(fd, buf, n) != n) {
		ret = -errno;
		pr_perror("can't write %s", path);
	}
	close(fd);
	return ret;
}

/* In the restored root: a new IPC namespace, its saved limits, its objects. */
int rst_ns_enter_ipc(struct rst_ctx *rc)
{
	const IpcVarEntry *ie = rc->ns.ipc;
	const struct {
		const char *name;
		uint64_t v;
	} vals[] = {
		{ "kernel/msgmax", ie->msg_ctlmax },
		{ "kernel/msgmnb", ie->msg_ctlmnb },
		{ "kernel/msgmni", ie->msg_ctlmni },
		{ "kernel/shmmax", ie->shm_ctlmax },
		{ "kernel/shmall", ie->shm_ctlall },
		{ "kernel/shmmni", ie->shm_ctlmni },
		{ "kernel/shm_rmid_forced", ie->shm_rmid_forced },
		{ "fs/mqueue/queues_max", ie->mq_queues_max },
		{ "fs/mqueue/msg_max", ie->mq_msg_max },
		{ "fs/mqueue/msgsize_max", ie->mq_msgsize_max },
	};
	int ret;

	if (unshare(CLONE_NEWIPC))
		return -errno;
	ret = rst_write_sysctl("kernel/sem", "%u %u %u %u", ie->sem_ctls[0], ie->sem_ctls[1],
			   ie->sem_ctls[2], ie->sem_ctls[3]);
	for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]) && !ret; i++)
		ret = rst_write_sysctl(vals[i].name, "%llu", (unsigned long long)vals[i].v);
	/* After the maxima: a default above the old maximum would be refused. */
	if (!ret && ie->has_mq_msg_default)
		ret = rst_write_sysctl("fs/mqueue/msg_default", "%u", ie->mq_msg_default);
	if (!ret && ie->has_mq_msgsize_default)
		ret = rst_write_sysctl("fs/mqueue/msgsize_default", "%u", ie->mq_msgsize_default);
	return ret;
}
