// SPDX-License-Identifier: MIT
/*
 * The client sides of the page-server protocol, fed a hostile server's
 * replies over a socketpair (a thread plays the server: it writes the
 * input, then reads every request until the connection closes):
 *
 *   mode & 1 == 0: the dump side (pageserver/xfer_ps.c): OPEN2 of a task
 *     (its one-byte parent answer), PARENT queries (an int32 each), pages
 *     sent, a hole, OPEN2 of a shmem object, and CLOSE's int32 status, as
 *     `amber dump --page-server` runs them; the sent pagemap copy goes
 *     into a scratch directory;
 *   mode & 1 == 1: the lazy daemon's GET client (pageserver/client.c):
 *     GETs of task and shmem pages of (mode >> 1) & 7 + 1 pages each,
 *     answered by partial runs, holes or errors, then CLOSE.
 *
 * Input: u8 mode | the server's bytes.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "base/util.h"
#include "common.h"
#include "image/magic.h"
#include "mem/xfer.h"
#include "pageserver/client.h"
#include "pageserver/conn.h"

static uint8_t pages[8 * PAGE_SIZE];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fz_init();
	for (size_t i = 0; i < sizeof(pages); i++)
		pages[i] = (uint8_t)(i * 13);
	return 0;
}

static void dump_side(struct ps_conn *c)
{
	int dirfd = fz_fresh_dir();
	struct xfer_target *t = xfer_target_ps(c, dirfd);
	struct iovec iov = { pages, 2 * PAGE_SIZE };
	struct xfer *x;
	int err = 0;

	if (!t) {
		close(dirfd);
		return;
	}
	if (xfer_has_parent(t, XFER_TASK, 42) < 0)
		err = -1;
	if (!err && !xfer_open(t, XFER_TASK, 42, &x)) {
		if (xfer_add(x, 0x400000, &iov, 1) || xfer_hole(x, 0x500000, 3, PE_PARENT))
			err = -1;
		if (xfer_close(x))
			err = -1;
	}
	if (!err && !xfer_open(t, XFER_SHMEM, 7, &x)) {
		xfer_add_buf(x, 0, 1, pages);
		if (xfer_close(x))
			err = -1;
	}
	if (err)
		xfer_target_abort(t);
	else
		xfer_target_fini(t);
	close(dirfd);
}

static void lazy_side(struct ps_conn *conn, unsigned nr)
{
	struct ps_client *c = ps_client_adopt(conn);
	static uint8_t buf[8 * PAGE_SIZE];

	if (!c) {
		ps_conn_close(conn);
		return;
	}
	for (int i = 0; i < 4; i++) {
		int ret = i & 1 ? ps_client_get_shmem_pages(c, 7, i * PAGE_SIZE, nr, buf)
				: ps_client_get_pages(c, 100, 0x10000 + i * PAGE_SIZE, nr, buf);

		if (ret && ret != -ENOENT && ret < -4095)
			abort(); /* not an errno */
	}
	ps_client_close(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_peer peer = { .data = data + 1, .size = size ? size - 1 : 0 };
	struct ps_conn c = { .wire = PS_WIRE_24, .peer = "fuzz" };

	fz_fds_begin();

	if (!size)
		return 0;
	fz_peer_start(&peer, &c.fd);
	if (data[0] & 1)
		lazy_side(&c, ((data[0] >> 1) & 7) + 1);
	else
		dump_side(&c);
	fz_peer_join(&peer);
	fz_fds_end();
	return 0;
}
