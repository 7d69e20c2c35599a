// SPDX-License-Identifier: GPL-2.0
/*
 * AIO contexts (io_setup): two rings with completed requests whose events
 * are not read yet, one of them wrapped around (its tail behind its head).
 * After the restore the same context ids give back the unread events, in
 * order, with their data and results, then take and complete new requests.
 */
#include <linux/aio_abi.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "zdtm.h"

#define UNREAD 10

static int fd;
static char bufs[UNREAD][16];

/* @n reads of 16 bytes at offsets tag * 16, tagged data = tag. */
static int submit(aio_context_t ctx, int first, int n)
{
	struct iocb cbs[40], *p[40];

	for (int i = 0; i < n; i++) {
		cbs[i] = (struct iocb){ .aio_data = first + i, .aio_lio_opcode = IOCB_CMD_PREAD,
					.aio_fildes = fd, .aio_buf = (uintptr_t)bufs[i % UNREAD],
					.aio_nbytes = 16, .aio_offset = (first + i) % 64 * 16 };
		p[i] = &cbs[i];
	}
	return syscall(SYS_io_submit, ctx, n, p) == n ? 0 : -1;
}

/* Exactly @n events, tags first..first+n-1, each a whole read. */
static int reap(aio_context_t ctx, int first, int n)
{
	struct io_event ev[40];
	struct timespec zero = { 0, 0 };
	long got = syscall(SYS_io_getevents, ctx, n, 40, ev, &zero);

	if (got != n) {
		test_msg("%ld events, want %d\n", got, n);
		return -1;
	}
	for (int i = 0; i < n; i++)
		if (ev[i].data != (uint64_t)(first + i) || ev[i].res != 16) {
			test_msg("event %d: data %llu res %lld\n", i,
				 (unsigned long long)ev[i].data, (long long)ev[i].res);
			return -1;
		}
	return 0;
}

struct ring_hdr {
	unsigned id, nr, head, tail;
};

static unsigned ring_nr(aio_context_t ctx)
{
	return ((struct ring_hdr *)ctx)->nr;
}

/* Submits @n and waits (without reading) until the ring holds @n more. */
static int complete_unread(aio_context_t ctx, int first, int n)
{
	volatile struct ring_hdr *ring = (void *)ctx;

	if (submit(ctx, first, n))
		return -1;
	while ((ring->tail + ring->nr - ring->head) % ring->nr != (unsigned)n)
		usleep(1000);
	return 0;
}

int main(int argc, char **argv)
{
	aio_context_t a = 0, b = 0;
	char page[1024];

	test_init(argc, argv);
	fd = memfd_create("aio", 0);
	for (int i = 0; i < (int)sizeof(page); i++)
		page[i] = i;
	if (fd < 0 || write(fd, page, sizeof(page)) != sizeof(page))
		return fail_errno("memfd"), 1;
	if (syscall(SYS_io_setup, 4, &a) || syscall(SYS_io_setup, 64, &b))
		return fail_errno("io_setup"), 1;
	/* b's head is brought near its end: its unread events wrap around. */
	for (int done = 0, n, left = ring_nr(b) - UNREAD / 2; left; left -= n, done += n) {
		n = left < 40 ? left : 40;
		if (submit(b, done, n) || reap(b, done, n))
			return fail("requests before the dump"), 1;
	}
	if (complete_unread(a, 1000, UNREAD) || complete_unread(b, 2000, UNREAD))
		return fail_errno("completing requests"), 1;
	test_daemon();
	test_waitsig();

	if (reap(a, 1000, UNREAD) || reap(b, 2000, UNREAD))
		return fail("unread events differ after the restore"), 1;
	if (submit(a, 3000, 3) || reap(a, 3000, 3))
		return fail("new requests on a restored context"), 1;
	for (int i = 0; i < 3; i++)
		if (memcmp(bufs[i], page + (3000 + i) % 64 * 16, 16))
			return fail("read %d after the restore got other bytes", i), 1;
	if (submit(b, 4000, 30) || reap(b, 4000, 30))
		return fail("new requests on the wrapped context"), 1;
	if (syscall(SYS_io_destroy, a) || syscall(SYS_io_destroy, b))
		return fail_errno("io_destroy"), 1;
	pass();
	return 0;
}
