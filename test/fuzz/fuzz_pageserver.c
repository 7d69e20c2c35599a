// SPDX-License-Identifier: MIT
/*
 * The page server's side of the CRIU page-server protocol: the input is
 * everything one client sends on one connection (a socketpair; a thread
 * plays the client and reads every reply), served by the receive session
 * (ps_recv_serve(): OPEN2/ADD_F/HOLE/PARENT/CLOSE into a fresh directory
 * whose parent/ holds a small pagemap, so PE_PARENT runs are checked
 * against it) or by the lazy session (ps_lazy_serve(): GETs, plain and
 * PS_GET_SHMEM, answered from a small dump made at start-up, with
 * checksummed and unchecksummed entries: pid 100, shmem 7, and pid 101
 * whose pagemap has no data here).
 *
 * Input: u8 mode | the client's bytes.
 *   mode & 1: lazy session, else receive
 *   mode & 2: the server asks for the token first (ps_conn_server_secure);
 *             the client thread answers correctly, then sends the bytes
 *             (fuzz_token fuzzes the handshake itself)
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/csum.h"
#include "base/util.h"
#include "common.h"
#include "image/image.h"
#include "image/magic.h"
#include "pagemap.pb-c.h"
#include "pageserver/server.h"

static char lazy_dir[128], parent_dir[128];
static int lazy_dirfd;

/*
 * pagemap image @type/@id in @dirfd: entries {vaddr, nr, flags, which sum
 * (AMBER_CSUM_V*, 0: none)} over pages-@pid.
 */
static void write_pagemap(int dirfd, enum img_type type, unsigned long id, uint32_t pages_id,
			  const uint64_t (*ents)[4], int nr)
{
	PagemapHead ph = PAGEMAP_HEAD__INIT;
	struct img *img = img_open(dirfd, type, true, id), *pages;
	uint8_t page[PAGE_SIZE];

	pages = img_open(dirfd, IMG_PAGES, true, pages_id);
	if (!img || !pages)
		abort();
	ph.pages_id = pages_id;
	img_write_msg(img, &ph.base);
	for (int i = 0; i < nr; i++) {
		PagemapEntry pe = PAGEMAP_ENTRY__INIT;
		size_t len = ents[i][1] * PAGE_SIZE;
		uint8_t *buf = malloc(len);

		for (size_t j = 0; j < len; j++)
			buf[j] = (uint8_t)(j * 7 + i);
		pe.vaddr = ents[i][0];
		pe.nr_pages = ents[i][1];
		pe.has_flags = true;
		pe.flags = ents[i][2];
		if (ents[i][3]) {
			pe.has_amber_csum = ents[i][3] == AMBER_CSUM_V1;
			pe.amber_csum = amber_csum(buf, len, pe.vaddr);
			pe.has_amber_csum2 = ents[i][3] == AMBER_CSUM_V2;
			pe.amber_csum2 = amber_csum2(buf, len, pe.vaddr);
		}
		img_write_msg(img, &pe.base);
		if (pe.flags & PE_PRESENT)
			img_write_raw(pages, buf, len);
		free(buf);
	}
	(void)page;
	img_close(img);
	img_close(pages);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const uint64_t task[][4] = {
		{ 0x10000, 4, PE_PRESENT, AMBER_CSUM_V2 },
		{ 0x20000, 2, PE_PRESENT, 0 },
		{ 0x30000, 3, PE_PARENT, 0 },
		{ 0x40000, 1, PE_PRESENT, AMBER_CSUM_V2 },
	};
	static const uint64_t none_here[][4] = { { 0x10000, 2, PE_PARENT, 0 } };
	static const uint64_t shmem[][4] = { { 0, 2, PE_PRESENT, AMBER_CSUM_V2 },
					     { 0x4000, 1, PE_PRESENT, 0 } };
	/* an older build's parent: version 1 sums */
	static const uint64_t parent[][4] = { { 0x10000, 8, PE_PRESENT, AMBER_CSUM_V1 },
					      { 0x30000, 4, PE_PRESENT, AMBER_CSUM_V1 } };
	int fd;

	fz_init();
	snprintf(lazy_dir, sizeof(lazy_dir), "%s.lazy", fz_dir_path());
	snprintf(parent_dir, sizeof(parent_dir), "%s.parent", fz_dir_path());
	mkdir(lazy_dir, 0700);
	mkdir(parent_dir, 0700);
	lazy_dirfd = open(lazy_dir, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
	fd = open(parent_dir, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
	if (lazy_dirfd < 0 || fd < 0)
		abort();
	write_pagemap(lazy_dirfd, IMG_PAGEMAP, 100, 1, task, 4);
	write_pagemap(lazy_dirfd, IMG_SHMEM_PAGEMAP, 7, 2, shmem, 2);
	write_pagemap(lazy_dirfd, IMG_PAGEMAP, 101, 3, none_here, 1);
	write_pagemap(fd, IMG_PAGEMAP, 100, 1, parent, 2);
	write_pagemap(fd, IMG_SHMEM_PAGEMAP, 7, 2, shmem, 2);
	close(fd);
	return 0;
}

static void answer_token(struct fz_peer *p)
{
	uint8_t reply[8 + 32];

	if (!fz_token_reply(p->fd, reply))
		send(p->fd, reply, sizeof(reply), MSG_NOSIGNAL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_peer peer = { .data = data + 1, .size = size ? size - 1 : 0 };
	struct ps_conn c = { .wire = PS_WIRE_24, .peer = "fuzz" };
	struct ps_sec sec = {};
	const uint8_t *tok;
	size_t tlen;
	int ret = 0, dirfd = -1;

	fz_fds_begin();

	if (!size)
		return 0;
	if (data[0] & 2) {
		sec.token_file = fz_token_file(&tok, &tlen);
		peer.before = answer_token;
	}
	if (!(data[0] & 1)) {
		dirfd = fz_fresh_dir();
		if (symlinkat(parent_dir, dirfd, "parent"))
			abort();
	}
	fz_peer_start(&peer, &c.fd);
	if (sec.token_file)
		ret = ps_conn_server_secure(&c, &sec);
	if (!ret && (data[0] & 1)) {
		struct ps_lazy_images *li = ps_lazy_open(lazy_dirfd);

		ps_lazy_serve(li, &c);
		ps_lazy_close(li);
	} else if (!ret) {
		uint32_t pages_id = 0x10000;

		ps_recv_serve(&c, dirfd, &pages_id);
	}
	ps_conn_close(&c);
	fz_peer_join(&peer);
	if (dirfd >= 0)
		close(dirfd);
	fz_fds_end();
	return 0;
}
