// SPDX-License-Identifier: MIT
/*
 * Lazy restore, the blob's part: a userfaultfd for this task, the lazy
 * VMAs registered in missing mode, and the uffd sent to the lazy-pages
 * keeper with the LZ_TASK message amber prepared (lazy_proto.h).
 *
 * This runs before anything touches the lazy VMAs: from here on a touch
 * (even by the kernel, like rseq's update on the way back to user space)
 * waits for the daemon, so the uffd must already be on its way.
 */
#include <stddef.h>
#include <stdint.h>
#include <linux/ioctl.h>
#include <linux/userfaultfd.h>

#include "restore/restorer_args.h"
#include "lazy.h"
#include "sys.h"

#define O_NONBLOCK   04000
#define O_CLOEXEC    02000000
#define SOL_SOCKET   1
#define SCM_RIGHTS   1
#define MSG_NOSIGNAL 0x4000

struct k_iovec {
	void *base;
	uint64_t len;
};

struct k_msghdr {
	void *name;
	int32_t namelen, pad;
	struct k_iovec *iov;
	uint64_t iovlen;
	void *control;
	uint64_t controllen;
	int32_t flags, pad2;
};

struct k_cmsg_fd {
	uint64_t len;
	int32_t level, type;
	int32_t fd, pad;
};

/* 0, or the failing step in *what and a negative errno. */
long rst_lazy_register(struct rst_task_args *a, const char **what)
{
	struct rst_vma *v = (struct rst_vma *)a->vmas;
	struct uffdio_api api = { .api = UFFD_API, .features = a->uffd_features };
	struct k_cmsg_fd cm = { .len = 20, .level = SOL_SOCKET, .type = SCM_RIGHTS };
	struct k_iovec iov = { (void *)a->lazy_msg, a->lazy_msg_len };
	struct k_msghdr mh = { .iov = &iov, .iovlen = 1, .control = &cm, .controllen = sizeof(cm) };
	long uffd, ret;

	if (a->uffd >= 0) {
		uffd = a->uffd; /* from /dev/userfaultfd, UFFDIO_API done by amber */
		ret = 0;
	} else {
		*what = "userfaultfd()";
		uffd = sys1(NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);
		if (uffd < 0)
			return uffd;
		*what = "UFFDIO_API";
		ret = sys3(NR_ioctl, uffd, UFFDIO_API, &api);
	}
	for (uint32_t i = 0; !ret && i < a->nr_vmas; i++, v++) {
		struct uffdio_register reg = {
			.range = { .start = v->start, .len = v->end - v->start },
			.mode = UFFDIO_REGISTER_MODE_MISSING,
		};

		if (!v->lazy)
			continue;
		*what = "UFFDIO_REGISTER of a lazy VMA";
		ret = sys3(NR_ioctl, uffd, UFFDIO_REGISTER, &reg);
	}
	if (!ret) {
		*what = "sending the uffd to the lazy-pages daemon";
		cm.fd = uffd;
		ret = sys3(NR_sendmsg, a->lazy_sock, &mh, MSG_NOSIGNAL);
		ret = ret == (long)a->lazy_msg_len ? 0 : (ret < 0 ? ret : -5);
	}
	/* The keeper holds it now; our copy must not outlive the restore. */
	sys1(NR_close, uffd);
	return ret;
}
