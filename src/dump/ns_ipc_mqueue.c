// SPDX-License-Identifier: MIT
/*
 * The POSIX message queues of the tree's own IPC namespace, into
 * ipcns-mqueue-<ns>.img (an amber image: CRIU has none; written only
 * when there is a queue, so crit reads the rest of a dump): every queue its
 * mqueue file system lists, whether a task holds it open or not, with
 * its name, owner, mode, sizes and messages (files/mqueue.h: read by
 * taking them and sending them back at once, the tree frozen).
 *
 * amber's thread enters the namespace (mq_open() names queues in the
 * caller's), makes a detached mount of its mqueue file system to list
 * them (fsopen: no mount point needed), and comes back. That mount's
 * device tells the tasks' descriptors of these queues from others
 * (files_dump_ctx.mq_dev).
 */
#define LOG_PREFIX "ns: "
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "dump/dump.h"
#include "dump/ns.h"
#include "files/mqueue.h"
#include "image/image.h"

/* The root of a new mount of the caller's IPC namespace's mqueue file system. */
static int mqueue_root(dev_t *dev)
{
	cleanup_close int fs = fsopen("mqueue", FSOPEN_CLOEXEC);
	cleanup_close int mnt = -1;
	struct stat st;
	int dir;

	if (fs < 0 || fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0))
		return -errno;
	mnt = fsmount(fs, FSMOUNT_CLOEXEC, 0);
	if (mnt < 0 || fstat(mnt, &st))
		return -errno;
	dir = openat(mnt, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0)
		return -errno;
	*dev = st.st_dev;
	return dir;
}

static int dump_queue(struct img *img, pid_t root, const char *dname)
{
	char name[NAME_MAX + 2];
	MqueueEntry e = MQUEUE_ENTRY__INIT;
	cleanup_close int fd = -1;
	int notify, ret;

	snprintf(name, sizeof(name), "/%s", dname);
	fd = mq_open(name, O_RDWR | O_NONBLOCK);
	if (fd < 0) {
		pr_perror("can't open queue %s of the IPC namespace of %d", name, root);
		return -errno;
	}
	/* Its messages go back in: a registration would fire, and its sigev_value is unreadable. */
	notify = files_mq_notify_pid(fd);
	if (notify) {
		if (notify > 0)
			pr_err("queue %s of the IPC namespace of %d has an mq_notify() "
			       "registration of pid %d: not supported\n", name, root, notify);
		return notify > 0 ? -ENOTSUP : notify;
	}
	e.name = name;
	ret = files_mq_read(fd, &e);
	if (ret) {
		pr_err("can't read queue %s of the IPC namespace of %d: %s\n", name, root,
		       strerror(-ret));
		return ret;
	}
	pr_info("POSIX queue %s mode %#o: %zu of %llu messages of %llu bytes\n", name, e.mode,
		e.n_msgs, (unsigned long long)e.maxmsg, (unsigned long long)e.msgsize);
	ret = img_write_msg(img, &e.base);
	files_mq_free_msgs(&e);
	return ret;
}

static int dump_queues(struct dump_ctx *dc, pid_t root)
{
	struct img *img = NULL;
	struct dirent *de;
	dev_t dev = 0;
	int dir = mqueue_root(&dev), ret = 0;
	DIR *d;

	if (dir < 0) {
		pr_err("can't mount the mqueue file system of the IPC namespace of %d: %s\n", root,
		       strerror(-dir));
		return dir;
	}
	d = fdopendir(dir);
	if (!d) {
		close(dir);
		return -errno;
	}
	/* Opened at the first queue: none, no image (crit can't read it). */
	while (!ret && (errno = 0, de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (!img)
			img = img_open(dc->dirfd, IMG_IPCNS_MQUEUE, true, dc->ns.ipc_ns_id);
		ret = img ? dump_queue(img, root, de->d_name) : -errno;
	}
	if (!ret && errno)
		ret = -errno;
	closedir(d);
	if (img && img_close(img) && !ret)
		ret = -EIO;
	dc->files.mq_dev = dev;
	return ret;
}

int dump_ipc_mqueue(struct dump_ctx *dc, pid_t root)
{
	return dump_queues(dc, root);
}
