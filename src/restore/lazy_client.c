// SPDX-License-Identifier: MIT
/*
 * amber restore --lazy-pages: the restore's side of lazy_proto.h. One
 * connection to the keeper, made before the images are loaded (a post-copy
 * daemon hands over the pages files of eager memory on it), is shared by
 * every restored task (as an fd >= svc_fd_base); each task's restorer
 * blob sends its own LZ_TASK with its uffd on it. When the last copy is
 * closed the keeper knows every uffd of the restore has arrived.
 */
#define LOG_PREFIX "lazy: "
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>
#include <linux/capability.h>
#include <linux/userfaultfd.h>

#include "lazy/lazy.h"
#include "restore/lazy_proto.h"
#include "base/fdpass.h"
#include "base/log.h"
#include "restore/restore.h"
#include "base/proc.h"
#include "base/util.h"

int lazy_socket_path(const char *dir, const char *path, struct sockaddr_un *sa)
{
	int n;

	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (path)
		n = snprintf(sa->sun_path, sizeof(sa->sun_path), "%s", path);
	else
		n = snprintf(sa->sun_path, sizeof(sa->sun_path), "%s/%s", dir, LAZY_SOCKET_NAME);
	if (n < 0 || n >= (int)sizeof(sa->sun_path)) {
		pr_err("socket path too long (max %zu): use --socket\n", sizeof(sa->sun_path) - 1);
		return -ENAMETOOLONG;
	}
	return 0;
}

uint64_t lazy_uffd_features(void)
{
	const uint64_t want = UFFD_FEATURE_EVENT_FORK | UFFD_FEATURE_EVENT_REMAP |
			      UFFD_FEATURE_EVENT_REMOVE | UFFD_FEATURE_EVENT_UNMAP;
	struct uffdio_api api = { .api = UFFD_API };
	int fd = syscall(SYS_userfaultfd, O_CLOEXEC);
	uint64_t f = 0;

	if (fd < 0)
		return 0;
	if (!ioctl(fd, UFFDIO_API, &api))
		f = api.features & want;
	close(fd);
	return f;
}

int lazy_send(int fd, struct lazy_msg *m, int pass_fd)
{
	size_t len = sizeof(*m) + m->nr_ranges * sizeof(m->ranges[0]);
	ssize_t n;

	m->magic = LAZY_MAGIC;
	n = fdpass_send(fd, m, len, pass_fd);
	if (n < 0)
		return n;
	return n == (ssize_t)len ? 0 : -EIO;
}

int lazy_recv(int fd, struct lazy_msg *m, int *got_fd)
{
	struct iovec iov = { m, LAZY_MSG_MAX };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
			     .msg_controllen = sizeof(u.buf) };
	struct cmsghdr *c;
	ssize_t n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	int nr_fds = 0;

	*got_fd = -1;
	if (n < 0)
		return -errno;
	/*
	 * CMSG_SPACE(sizeof(int)) is padded to room for two fds and the kernel
	 * installs as many as fit: a peer sending two must not leave one open
	 * here. The first is kept, any other closed, the message refused below.
	 */
	for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
		    c->cmsg_len < CMSG_LEN(0))
			continue;
		for (size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
			int one;

			memcpy(&one, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (nr_fds++)
				close(one);
			else
				*got_fd = one;
		}
	}
	/* An empty message reads as the end, but an fd may have come with it. */
	if (n == 0) {
		if (*got_fd >= 0)
			close(*got_fd);
		*got_fd = -1;
		return 0;
	}
	if ((size_t)n < sizeof(*m) || m->magic != LAZY_MAGIC || m->nr_ranges > LAZY_MAX_RANGES ||
	    (size_t)n != sizeof(*m) + m->nr_ranges * sizeof(m->ranges[0]) || nr_fds > 1 ||
	    (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
		pr_err("malformed message (%zd bytes) on the lazy-pages socket\n", n);
		if (*got_fd >= 0)
			close(*got_fd);
		*got_fd = -1;
		return -EBADMSG;
	}
	m->has_fd = *got_fd >= 0;
	return 1;
}

int lazy_connect(const struct sockaddr_un *sa)
{
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa))) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

/* Waits up to 10 s for one message from the keeper. */
static int recv_wait(int fd, struct lazy_msg *m, int *got_fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int n = poll(&p, 1, 10000);

	if (n < 0)
		return -errno;
	if (n == 0)
		return -ETIMEDOUT;
	n = lazy_recv(fd, m, got_fd);
	return n == 0 ? -ECONNRESET : n < 0 ? n : 0;
}

/* LZ_PAGES... LZ_PAGES_END: the pages files of a post-copy restore, if any. */
static int take_pages(struct rst_ctx *rc, int fd)
{
	struct lazy_msg ask = { .type = LZ_ASK_PAGES };
	struct pm_pages_src *ps = &rc->lazy_pages;
	cleanup_free struct lazy_msg *m = malloc(LAZY_MSG_MAX);
	struct pm_pages_fd *n;
	int ret, got;

	if (!m)
		return -ENOMEM;
	ret = lazy_send(fd, &ask, -1);
	while (!ret && !(ret = recv_wait(fd, m, &got))) {
		if (m->type == LZ_PAGES_END && got < 0) {
			if (m->a != (uint64_t)ps->nr_fds) {
				pr_err("the daemon announced %llu pages files, sent %d\n",
				       (unsigned long long)m->a, ps->nr_fds);
				return -EPROTO;
			}
			if (ps->nr_fds)
				rc->pages_src = ps;
			return 0;
		}
		if (m->type != LZ_PAGES || got < 0 || m->a > UINT32_MAX) {
			if (got >= 0)
				close(got);
			pr_err("unexpected message %u from the lazy-pages daemon\n", m->type);
			return -EPROTO;
		}
		n = xrealloc_array((void *)ps->fds, ps->nr_fds + 1, sizeof(*n));
		if (!n) {
			close(got);
			return -ENOMEM;
		}
		n[ps->nr_fds++] = (struct pm_pages_fd){ .id = m->a, .fd = got };
		ps->fds = n;
	}
	pr_err("no answer from the lazy-pages daemon: %s\n", strerror(-ret));
	return ret;
}

int lazy_restore_connect(struct rst_ctx *rc)
{
	struct sockaddr_un sa;
	int fd, ret;

	fd = syscall(SYS_userfaultfd, O_CLOEXEC);
	if (fd < 0) {
		pr_perror("--lazy-pages needs userfaultfd (Linux 4.11+, CONFIG_USERFAULTFD; root, "
			  "CAP_SYS_PTRACE or vm.unprivileged_userfaultfd=1)");
		return -errno;
	}
	close(fd);
	rc->uffd_features = lazy_uffd_features();
	/*
	 * The kernel offers the fork event to anyone but grants it only with
	 * CAP_SYS_PTRACE; without it each task would die in its restorer.
	 * Without the event a child forked before its pages arrive would see
	 * zeros: no lazy restore then.
	 */
	if ((rc->uffd_features & UFFD_FEATURE_EVENT_FORK) && !proc_self_has_cap(CAP_SYS_PTRACE)) {
		pr_err("--lazy-pages: the restored tasks' forks must reach the daemon "
		       "(UFFD_FEATURE_EVENT_FORK), which needs CAP_SYS_PTRACE\n");
		return -EPERM;
	}
	ret = lazy_socket_path(rc->opts->dir, rc->opts->lazy_socket, &sa);
	if (ret)
		return ret;
	fd = lazy_connect(&sa);
	if (fd < 0) {
		errno = -fd;
		pr_perror("can't reach the lazy-pages daemon at %s (start `amber lazy-pages` first)",
			  sa.sun_path);
		return fd;
	}
	rc->lazy_fd = fd;
	ret = take_pages(rc, fd);
	if (ret)
		return ret;
	pr_info("lazy pages from %s, uffd features %#llx%s\n", sa.sun_path,
		(unsigned long long)rc->uffd_features,
		rc->pages_src ? ", pages files from the daemon (post-copy)" : "");
	return 0;
}

int lazy_restore_hello(struct rst_ctx *rc)
{
	struct lazy_msg m = { .type = LZ_HELLO_RESTORE };

	/* Every task inherits rc->lazy_fd (above svc_fd_base); the blob closes it. */
	return lazy_send(rc->lazy_fd, &m, -1);
}

void lazy_restore_put_pages(struct rst_ctx *rc)
{
	struct pm_pages_src *ps = &rc->lazy_pages;

	for (int i = 0; i < ps->nr_fds; i++)
		close(ps->fds[i].fd);
	free((void *)ps->fds);
	ps->fds = NULL;
	ps->nr_fds = 0;
	rc->pages_src = NULL;
}
