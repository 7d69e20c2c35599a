// SPDX-License-Identifier: MIT
/*
 * The restore's side of the lazy-pages protocol (restore/lazy_client.c):
 * what `amber restore --lazy-pages` reads from the keeper before it loads
 * the images, LZ_PAGES (a pages file, one memfd each) up to LZ_PAGES_END.
 * lazy_client.c is included so that its static take_pages() runs as
 * lazy_restore_connect() calls it: it sends LZ_ASK_PAGES and frames the
 * replies with recv_wait()/lazy_recv() off a SOCK_SEQPACKET socketpair
 * whose other end, the keeper's, holds the input, already queued, then
 * shut for writing. What it accepts is then used the way rst_load() does:
 * pm_layer_load() of two pagemaps with PE_PRESENT and PE_LAZY entries
 * (pages-1.img: 1 page, pages-2.img: 2 pages) takes its pages files from
 * the handed-over fds. Last, lazy_restore_put_pages() as restore_run().
 *
 * Input: records { u8 ctl | u16 len (LE) | len bytes, sent as one message }
 *   ctl & 3: 0 no fd, 1 a memfd, 2 an eventfd (no pages file at all),
 *            3 two memfds in one SCM_RIGHTS (the receiver has room for one)
 *   (ctl >> 2) & 3: the memfds' size in pages
 */
#include <sys/eventfd.h>
#include <sys/mman.h>

#include "../../src/restore/lazy_client.c"
#include "common.h"
#include "image/image.h"
#include "image/magic.h"
#include "mem/pagemap_chain.h"
#include "pagemap.pb-c.h"

static int img_dir = -1;

/* pagemap-@id.img: pages_id @id, @nr_present pages then two lazy ones. */
static void write_pagemap(unsigned long id, uint32_t nr_present)
{
	struct img *img = img_open(img_dir, IMG_PAGEMAP, true, id);
	PagemapHead ph = PAGEMAP_HEAD__INIT;
	PagemapEntry pe = PAGEMAP_ENTRY__INIT, lazy = PAGEMAP_ENTRY__INIT;

	if (!img)
		abort();
	ph.pages_id = id;
	pe.vaddr = 0x10000;
	pe.nr_pages = nr_present;
	pe.has_flags = true;
	pe.flags = PE_PRESENT;
	lazy.vaddr = 0x20000;
	lazy.nr_pages = 2;
	lazy.has_flags = true;
	lazy.flags = PE_LAZY;
	if (img_write_msg(img, &ph.base) || img_write_msg(img, &pe.base) ||
	    img_write_msg(img, &lazy.base) || img_close(img))
		abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fz_init();
	img_dir = fz_fresh_dir();
	write_pagemap(1, 1);
	write_pagemap(2, 2);
	return 0;
}

static int memfd(unsigned pages)
{
	int fd = memfd_create("fuzz-pages", MFD_CLOEXEC);

	if (fd < 0 || ftruncate(fd, pages * PAGE_SIZE))
		abort();
	return fd;
}

/* One message from the keeper's end, as lazy_send() would, with the fds @ctl says. */
static void keeper_send(int sk, const uint8_t *buf, size_t len, uint8_t ctl)
{
	union {
		char buf[CMSG_SPACE(2 * sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = { (void *)buf, len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	int fds[2] = { -1, -1 }, nr = 0;

	switch (ctl & 3) {
	case 1:
		fds[nr++] = memfd((ctl >> 2) & 3);
		break;
	case 2:
		fds[nr++] = eventfd(0, EFD_CLOEXEC);
		break;
	case 3:
		fds[nr++] = memfd((ctl >> 2) & 3);
		fds[nr++] = memfd((ctl >> 2) & 3);
		break;
	}
	if (nr) {
		struct cmsghdr *c;

		mh.msg_control = u.buf;
		mh.msg_controllen = CMSG_SPACE(nr * sizeof(int));
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(nr * sizeof(int));
		memcpy(CMSG_DATA(c), fds, nr * sizeof(int));
	}
	sendmsg(sk, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
	for (int i = 0; i < nr; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

/* What rst_load() does with the pages files: each layer takes its own dup. */
static void use_pages(const struct pm_pages_src *src)
{
	for (unsigned long id = 1; id <= 2; id++) {
		struct pm_layer l;

		if (!pm_layer_load(&l, img_dir, IMG_PAGEMAP, id, src))
			pm_layer_free(&l);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rst_ctx rc = { .dirfd = -1, .lazy_fd = -1 };
	int sv[2], big = 8 << 20, ret;
	const uint8_t *msg;
	size_t at = 0;
	uint16_t len;
	uint8_t ctl;

	fz_fds_begin();
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv))
		abort();
	setsockopt(sv[1], SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof(big));
	setsockopt(sv[0], SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));
	while (fz_record(data, size, &at, &ctl, &msg, &len))
		keeper_send(sv[1], msg, len, ctl);
	/* The keeper says no more: take_pages() reads the end, never waits 10 s. */
	shutdown(sv[1], SHUT_WR);

	ret = take_pages(&rc, sv[0]);
	if (!ret) {
		/* Accepted: every pages file is an open fd, pages_src set iff there are any. */
		if ((rc.pages_src != NULL) != (rc.lazy_pages.nr_fds > 0))
			abort();
		for (int i = 0; i < rc.lazy_pages.nr_fds; i++)
			if (fcntl(rc.lazy_pages.fds[i].fd, F_GETFD) < 0)
				abort();
		if (rc.pages_src)
			use_pages(rc.pages_src);
	} else if (ret > 0 || ret < -4095) {
		abort(); /* not 0/-errno */
	}
	lazy_restore_put_pages(&rc);
	close(sv[0]);
	close(sv[1]);
	fz_fds_end();
	return 0;
}
