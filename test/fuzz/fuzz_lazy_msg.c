// SPDX-License-Identifier: MIT
/*
 * The lazy-pages socket protocol (restore/lazy_proto.h), on the side that
 * parses it: the keeper (lazy/keeper.c: messages from restores and from
 * the daemon, the journal and its replay) and the daemon (lazy/daemon.c:
 * the keeper's messages and the journal, which build the mm table and
 * each mm's page state in lazy/mm.c). Both files are included here so
 * their static handlers run as the real loops call them, after
 * lazy_recv() has framed each SOCK_SEQPACKET message off a socketpair.
 * No process is forked and no uffd exists: fds passed are eventfds.
 *
 * Input: records { u8 ctl | u16 len (LE) | len bytes, sent as one message }
 *   ctl & 3: 0 a restore (or not yet introduced) connection to the keeper,
 *            1 the daemon to the keeper, 2 the keeper to the daemon
 *   ctl & 4: an fd rides along (SCM_RIGHTS)
 * The daemon knows one image task, pid 1000: one VMA 0x10000-0x100000,
 * lazy runs at 0x10000 and 0x20000.
 */
#include <sys/eventfd.h>

#include "../../src/lazy/keeper.c"
#undef LOG_PREFIX
#include "../../src/lazy/daemon.c"
#include "common.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fz_init();
	return 0;
}

static void send_raw(int fd, const uint8_t *buf, size_t len, bool with_fd)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = { (void *)buf, len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	int efd = -1;

	if (with_fd) {
		struct cmsghdr *c;

		efd = eventfd(0, EFD_CLOEXEC);
		mh.msg_control = u.buf;
		mh.msg_controllen = sizeof(u.buf);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &efd, sizeof(int));
	}
	sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (efd >= 0)
		close(efd);
}

static void pair(int sv[2])
{
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv))
		abort();
}

/* The keeper's loop body for connection 0 and for the daemon (keeper_loop()). */
static void keeper_read(struct keeper *k)
{
	int ret, fd;

	while (k->daemon_fd >= 0 && (ret = lazy_recv(k->daemon_fd, k->buf, &fd)) > 0)
		daemon_msg(k, k->buf, fd);
	while (k->nr_conns && (ret = lazy_recv(k->conns[0], k->buf, &fd)) > 0) {
		int before = k->nr_conns;

		conn_msg(k, 0, k->buf, fd);
		if (k->nr_conns != before)
			break;
	}
}

static void keeper_free(struct keeper *k)
{
	for (int i = 0; i < k->nr_j; i++) {
		if (k->j[i].fd >= 0)
			close(k->j[i].fd);
		free(k->j[i].m);
	}
	free(k->j);
	for (int i = 0; i < k->nr_conns; i++)
		close(k->conns[i]);
	if (k->daemon_fd >= 0)
		close(k->daemon_fd);
}

static void daemon_free(struct lazy_daemon *d)
{
	for (int i = 0; i < d->nr_mms; i++) {
		if (d->mms[i]->uffd >= 0)
			close(d->mms[i]->uffd);
		lazy_mm_free(d->mms[i]);
	}
	free(d->mms);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct lazy_msg *kbuf, *dbuf;
	static struct rst_pages lazy_runs[] = { { .vaddr = 0x10000, .nr_pages = 4 },
						{ .vaddr = 0x20000, .nr_pages = 2 } };
	struct pm_pages_fd pages = { .id = 1, .fd = -1 };
	struct keeper k = { .listen_fd = -1, .daemon_fd = -1, .next_id = 1, .pages = &pages,
			    .nr_pages = 1 };
	struct lazy_opts lo = { .dir = "fuzz" };
	static VmaEntry vma = { .start = 0x10000, .end = 0x100000 }, *vmas[] = { &vma };
	static MmEntry mm = { .n_vmas = 1, .vmas = vmas };
	struct rst_task task = { .pid = 1000, .mm = &mm,
				 .pages = { .lazy = lazy_runs, .nr_lazy = 2 } };
	struct lazy_daemon d = { .o = &lo, .keeper = -1, .wake_fd = -1, .replaying = true,
				 .next_fork_id = LAZY_FORK_ID_BASE };
	int conn[2], kd[2], dk[2]; /* restore->keeper, daemon->keeper, keeper->daemon */
	const uint8_t *msg;
	size_t at = 0;
	uint16_t len;
	uint8_t ctl;

	fz_fds_begin();
	pages.fd = eventfd(0, EFD_CLOEXEC);

	if (!kbuf) {
		kbuf = malloc(LAZY_MSG_MAX);
		dbuf = malloc(LAZY_MSG_MAX);
	}
	k.buf = kbuf;
	d.buf = dbuf;
	d.rc.tasks = &task;
	d.rc.nr_tasks = 1;
	d.ep = epoll_create1(EPOLL_CLOEXEC);
	pair(conn);
	pair(kd);
	pair(dk);
	k.conns[k.nr_conns++] = conn[1];
	k.daemon_fd = kd[1];
	d.keeper = dk[1];
	while (fz_record(data, size, &at, &ctl, &msg, &len)) {
		switch (ctl & 3) {
		case 0:
			send_raw(conn[0], msg, len, ctl & 4);
			keeper_read(&k);
			break;
		case 1:
			send_raw(kd[0], msg, len, ctl & 4);
			keeper_read(&k);
			break;
		default:
			send_raw(dk[0], msg, len, ctl & 4);
			if (d.keeper >= 0 && read_keeper(&d)) {
				close(d.keeper); /* the daemon gives up on a bad keeper */
				d.keeper = -1;
			}
			break;
		}
	}
	keeper_free(&k);
	daemon_free(&d);
	if (d.keeper >= 0)
		close(d.keeper);
	close(conn[0]);
	close(kd[0]);
	close(dk[0]);
	close(d.ep);
	close(pages.fd);
	fz_fds_end();
	return 0;
}
