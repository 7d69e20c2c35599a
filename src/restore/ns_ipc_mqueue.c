// SPDX-License-Identifier: MIT
/*
 * The POSIX message queues of the tree's IPC namespace
 * (ipcns-mqueue-<ns>.img, amber's own image): read and checked with the
 * other images, made again by the restored root right after its new IPC
 * namespace and its SysV objects, before it forks, with their owner,
 * mode, sizes and messages in their saved order (files/mqueue.h). The
 * tasks' descriptors then open them by name (files/mqueue.c).
 */
#define LOG_PREFIX "ns: "
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "files/mqueue.h"
#include "image/image.h"
#include "restore/ns.h"
#include "restore/restore.h"

/* No more queues than the kernel's HARD_QUEUESMAX would let one namespace hold. */
#define MQ_MAX_QUEUES 1024

static int add_queue(struct rst_ns *ns, MqueueEntry *e, const char *img)
{
	MqueueEntry **q;

	if (!files_mq_entry_ok(e, img))
		return -EINVAL;
	for (size_t i = 0; i < ns->nr_mqueues; i++)
		if (!strcmp(ns->mqueues[i]->name, e->name)) {
			pr_err("%s: queue %s is there twice\n", img, e->name);
			return -EINVAL;
		}
	if (ns->nr_mqueues >= MQ_MAX_QUEUES) {
		pr_err("%s: more than %d queues\n", img, MQ_MAX_QUEUES);
		return -EINVAL;
	}
	q = realloc(ns->mqueues, (ns->nr_mqueues + 1) * sizeof(*q));
	if (!q)
		return -ENOMEM;
	ns->mqueues = q;
	q[ns->nr_mqueues++] = e;
	return 0;
}

/* A missing image (a dump by CRIU or an older amber) holds no queue. */
int rst_mqueue_load(struct rst_ctx *rc, uint32_t id)
{
	struct img *img = img_open_optional(rc->dirfd, IMG_IPCNS_MQUEUE, id);
	MqueueEntry *e;
	int ret;

	if (!img)
		return errno == ENOENT ? 0 : -errno;
	while ((ret = img_read_msg(img, &mqueue_entry__descriptor, (ProtobufCMessage **)&e)) > 0) {
		ret = add_queue(&rc->ns, e, img->name);
		if (ret) {
			mqueue_entry__free_unpacked(e, NULL);
			break;
		}
	}
	if (ret < 0)
		pr_err("%s can't be read: %s\n", img->name, strerror(-ret));
	img_close(img);
	return ret < 0 ? ret : 0;
}

int rst_mqueue_make(struct rst_ctx *rc)
{
	for (size_t i = 0; i < rc->ns.nr_mqueues; i++) {
		int ret = files_mq_make(rc->ns.mqueues[i], rc->ns.mqueues[i]->name);

		if (ret)
			return ret;
	}
	return 0;
}

void rst_mqueue_free(struct rst_ns *ns)
{
	for (size_t i = 0; i < ns->nr_mqueues; i++)
		mqueue_entry__free_unpacked(ns->mqueues[i], NULL);
	free(ns->mqueues);
	ns->mqueues = NULL;
	ns->nr_mqueues = 0;
}
