// SPDX-License-Identifier: MIT
/*
 * The tree's own IPC namespace: its sysctls (ipcns-var image), its SysV
 * objects (ns_ipc_sysv.c) and its POSIX message queues (ns_ipc_mqueue.c).
 */
#define LOG_PREFIX "ns: "
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/log.h"
#include "dump/dump.h"
#include "dump/ns.h"
#include "image/image.h"
#include "ipc-var.pb-c.h"

/* What a child that entered the namespace found there. */
struct ipc_probe {
	int err;	 /* -errno of the probe itself */
	uint32_t sem[4];
	uint64_t v[IPC_NS_NR_SYSCTLS];
};

const char *const ipc_ns_sysctls[IPC_NS_NR_SYSCTLS] = {
	"kernel/msgmax",	"kernel/msgmnb",	   "kernel/msgmni",
	"kernel/shmmax",	"kernel/shmall",	   "kernel/shmmni",
	"kernel/shm_rmid_forced", "fs/mqueue/queues_max", "fs/mqueue/msg_max",
	"fs/mqueue/msgsize_max", "fs/mqueue/msg_default", "fs/mqueue/msgsize_default",
};

static int read_small(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = 0;
	return 0;
}

static void probe(int nsfd, struct ipc_probe *p)
{
	char path[80], buf[128];

	if (setns(nsfd, CLONE_NEWIPC)) {
		p->err = -errno;
		return;
	}
	if (!read_small("/proc/sys/kernel/sem", buf, sizeof(buf)) &&
	    sscanf(buf, "%u %u %u %u", &p->sem[0], &p->sem[1], &p->sem[2], &p->sem[3]) != 4)
		p->err = -EINVAL;
	for (int i = 0; i < IPC_NS_NR_SYSCTLS && !p->err; i++) {
		snprintf(path, sizeof(path), "/proc/sys/%s", ipc_ns_sysctls[i]);
		if (read_small(path, buf, sizeof(buf)))
			p->err = -errno;
		else
			p->v[i] = strtoull(buf, NULL, 10);
	}
}

/* In a child: entering the namespace and mounting in it leaves amber as it is. */
static int probe_ns(pid_t root, struct ipc_probe *p)
{
	char path[64];
	int pfd[2], nsfd, st;
	pid_t child;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/ns/ipc", root);
	nsfd = open(path, O_RDONLY | O_CLOEXEC);
	if (nsfd < 0) {
		pr_perror("can't open %s", path);
		return -errno;
	}
	if (pipe2(pfd, O_CLOEXEC)) {
		close(nsfd);
		return -errno;
	}
	child = fork();
	if (child == 0) {
		struct ipc_probe mine = { 0 };

		close(pfd[0]);
		probe(nsfd, &mine);
		_exit(write(pfd[1], &mine, sizeof(mine)) == sizeof(mine) ? 0 : 1);
	}
	close(nsfd);
	close(pfd[1]);
	n = child > 0 ? read(pfd[0], p, sizeof(*p)) : -1;
	close(pfd[0]);
	if (child > 0)
		waitpid(child, &st, 0);
	if (n != sizeof(*p)) {
		pr_err("can't look into the IPC namespace of %d\n", root);
		return -EIO;
	}
	if (p->err)
		pr_err("can't look into the IPC namespace of %d: %s\n", root, strerror(-p->err));
	return p->err;
}

/* The namespace's objects, read by amber's thread from inside it. */
static int in_ipc_ns(struct dump_ctx *dc, pid_t root, IpcVarEntry *ie)
{
	char path[64];
	cleanup_close int own = open("/proc/thread-self/ns/ipc", O_RDONLY | O_CLOEXEC);
	cleanup_close int tree = -1;
	int ret;

	snprintf(path, sizeof(path), "/proc/%d/ns/ipc", root);
	tree = open(path, O_RDONLY | O_CLOEXEC);
	if (own < 0 || tree < 0 || setns(tree, CLONE_NEWIPC)) {
		pr_perror("can't enter the IPC namespace of %d", root);
		return -errno;
	}
	ret = dump_ipc_sysv(dc, root, ie);
	if (!ret)
		ret = dump_ipc_mqueue(dc, root);
	if (setns(own, CLONE_NEWIPC)) {
		pr_perror("can't go back to amber's IPC namespace");
		return -errno;
	}
	return ret;
}

int dump_ns_ipc(struct dump_ctx *dc, pid_t root)
{
	IpcVarEntry ie = IPC_VAR_ENTRY__INIT;
	struct ipc_probe p;
	int ret = probe_ns(root, &p);

	if (ret)
		return ret;
	dc->ns.ipc_ns_id = dump_new_id(dc);
	dc->ns.amber_ipc_ns_id = dump_new_id(dc);
	ret = in_ipc_ns(dc, root, &ie);
	if (ret)
		return ret;
	ie.n_sem_ctls = 4;
	ie.sem_ctls = p.sem;
	ie.msg_ctlmax = p.v[0];
	ie.msg_ctlmnb = p.v[1];
	ie.msg_ctlmni = p.v[2];
	ie.shm_ctlmax = p.v[3];
	ie.shm_ctlall = p.v[4];
	ie.shm_ctlmni = p.v[5];
	ie.shm_rmid_forced = p.v[6];
	ie.mq_queues_max = p.v[7];
	ie.mq_msg_max = p.v[8];
	ie.mq_msgsize_max = p.v[9];
	ie.has_mq_msg_default = ie.has_mq_msgsize_default = true;
	ie.mq_msg_default = p.v[10];
	ie.mq_msgsize_default = p.v[11];
	pr_info("IPC namespace of %d: ipcns-var/shm/sem/msg/mqueue-%u.img\n", root, dc->ns.ipc_ns_id);
	return img_write_one(dc->dirfd, IMG_IPC_VAR, dc->ns.ipc_ns_id, &ie.base);
}
