// SPDX-License-Identifier: MIT
/*
 * Unit test of the page-transfer layer without a dump: the page-server
 * header codec (both layouts, layout detection, dst_id decoding with the
 * legacy type numbers) and the local backend (runs split into checksummed
 * entries of at most XFER_ENTRY_PAGES pages, iovec gathering, filled runs,
 * holes, page file numbering, file modes, fill and write errors).
 */
#define LOG_PREFIX "test: "
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "image/image.h"
#include "image/magic.h"
#include "base/log.h"
#include "pagemap.pb-c.h"
#include "pageserver/proto.h"
#include "base/util.h"
#include "mem/xfer.h"

static int nfail;

static void check(int ok, const char *fmt, ...)
{
	va_list ap;

	if (ok)
		return;
	nfail++;
	va_start(ap, fmt);
	fprintf(stderr, "FAIL: ");
	vfprintf(stderr, fmt, ap);
	va_end(ap);
}

static void test_codec(void)
{
	struct ps_iov in = {PS_IOV_ADD_F, PE_PRESENT | PE_LAZY, 513, 0x7f0000001000ull,
			    (4242ull << 8) | PS_TYPE_PID},
		      out;
	uint8_t buf[PS_HDR_MAX];
	uint64_t id;

	for (int w = PS_WIRE_24; w <= PS_WIRE_32; w++) {
		ps_encode(w, &in, buf);
		ps_decode(w, buf, &out);
		check(!memcmp(&in, &out, sizeof(in)), "layout %d: round trip differs\n", w);
	}
	/* the 24-byte layout, byte by byte, as CRIU lays out its struct */
	ps_encode(PS_WIRE_24, &in, buf);
	check(buf[0] == 6 && buf[2] == 6 && buf[4] == 0x01 && buf[5] == 0x02,
	      "24-byte layout: cmd/flags/nr_pages bytes %02x %02x %02x %02x\n", buf[0], buf[2],
	      buf[4], buf[5]);
	check(buf[16] == PS_TYPE_PID && buf[17] == (4242 & 0xff), "24-byte dst_id at 16\n");
	in.cmd = PS_IOV_OPEN2;
	in.flags = in.nr_pages = in.vaddr = 0;
	ps_encode(PS_WIRE_24, &in, buf);
	check(ps_wire_detect(buf) == PS_WIRE_24, "OPEN2/24 not detected\n");
	ps_encode(PS_WIRE_32, &in, buf);
	check(ps_wire_detect(buf) == PS_WIRE_32, "OPEN2/32 not detected\n");
	in = (struct ps_iov){PS_IOV_GET, 0, 1, 0x400000, 4242};
	ps_encode(PS_WIRE_24, &in, buf);
	check(ps_wire_detect(buf) == PS_WIRE_24, "GET/24 not detected\n");
	ps_encode(PS_WIRE_32, &in, buf);
	check(ps_wire_detect(buf) == PS_WIRE_32, "GET/32 not detected\n");
	check(ps_decode_dst((7ull << 8) | 11, &id) == PS_TYPE_PID && id == 7, "legacy pid type\n");
	check(ps_decode_dst((9ull << 8) | 34, &id) == PS_TYPE_SHMEM && id == 9, "legacy shmem\n");
	check(ps_decode_dst((9ull << 8) | 3, &id) == -1, "type 3 accepted\n");
}

static uint8_t *pattern(size_t pages, unsigned seed)
{
	uint8_t *p = malloc(pages * PAGE_SIZE);

	for (size_t i = 0; p && i < pages * PAGE_SIZE; i++)
		p[i] = (uint8_t)(i * 31 + seed + i / PAGE_SIZE);
	return p;
}

/* xfer_fill_fn over one buffer; fails at byte offset fail_at, if set */
struct fill_src {
	const uint8_t *data;
	uint64_t fail_at;
	int calls;
};

static int fill_from(void *arg, void *buf, uint64_t off, size_t len)
{
	struct fill_src *src = arg;

	src->calls++;
	if (src->fail_at && off + len > src->fail_at)
		return -ENOSPC;
	memcpy(buf, src->data + off, len);
	return 0;
}

static void test_local(const char *dir)
{
	int dirfd = open(dir, O_DIRECTORY | O_RDONLY);
	uint32_t pages_id = 10;
	struct xfer_target *t = xfer_target_local(dirfd, &pages_id);
	uint8_t *a = pattern(600, 1), *b = pattern(3, 2), *c = pattern(700, 3);
	struct fill_src src = {c};
	struct iovec iov[3] = {{a, 100 * PAGE_SIZE},
			       {a + 100 * PAGE_SIZE, 450 * PAGE_SIZE},
			       {a + 550 * PAGE_SIZE, 50 * PAGE_SIZE}};
	struct xfer *x = NULL;
	PagemapHead *ph;
	PagemapEntry *pe;
	struct img *img;
	struct stat st;
	uint64_t off = 0;
	int n = 0;
	/* what goes in; each present run comes out cut into XFER_ENTRY_PAGES entries */
	const struct {
		uint64_t vaddr;
		uint32_t nr, flags;
	} runs[] = {{0x10000000, 600, PE_PRESENT},
		    {0x20000000, 4, PE_LAZY},
		    {0x30000000, 3, PE_PRESENT},
		    {0x40000000, 700, PE_PRESENT}};
	struct {
		uint64_t vaddr;
		uint32_t nr, flags;
	} want[64];
	int nr_want = 0;

	for (size_t i = 0; i < ARRAY_SIZE(runs); i++)
		for (uint32_t done = 0; done < runs[i].nr;) {
			uint32_t k = min(runs[i].nr - done, (uint32_t)XFER_ENTRY_PAGES);

			want[nr_want].vaddr = runs[i].vaddr + (uint64_t)done * PAGE_SIZE;
			want[nr_want].nr = k;
			want[nr_want++].flags = runs[i].flags;
			done += k;
		}

	check(t && a && b && !xfer_open(t, XFER_TASK, 77, &x), "open\n");
	{
		struct xfer *y = NULL;

		/* one pagemap open at a time: a page server has one current pagemap */
		check(xfer_open(t, XFER_SHMEM, 5, &y) == -EBUSY && !y, "second open allowed\n");
	}
	check(!xfer_add(x, 0x10000000, iov, 3), "add iov\n");
	check(!xfer_hole(x, 0x20000000, 4, PE_LAZY), "hole\n");
	check(xfer_hole(x, 0x20000000, 4, PE_PRESENT) == -EINVAL, "present hole accepted\n");
	check(!xfer_add_buf(x, 0x30000000, 3, b), "add buf\n");
	check(xfer_add_buf(x, 0x30000001, 1, b) == -EINVAL, "unaligned accepted\n");
	/* filled in pieces straight into the writer's buffers: same entries */
	check(!xfer_add_fill(x, 0x40000000, 700, fill_from, &src) && src.calls > 2, "add fill\n");
	check(!xfer_close(x), "close\n");
	check(!xfer_target_fini(t), "fini\n");
	check(pages_id == 11, "pages id %u\n", pages_id);

	img = img_open(dirfd, IMG_PAGEMAP, false, 77);
	check(img && img_read_msg(img, &pagemap_head__descriptor, (ProtobufCMessage **)&ph) == 1,
	      "head\n");
	if (!img)
		return;
	check(ph->pages_id == 11, "head pages_id %u\n", ph->pages_id);
	pagemap_head__free_unpacked(ph, NULL);
	int pfd = openat(dirfd, "pages-11.img", O_RDONLY);

	while (img_read_msg(img, &pagemap_entry__descriptor, (ProtobufCMessage **)&pe) == 1) {
		check(n < nr_want && pe->vaddr == want[n].vaddr && pe->nr_pages == want[n].nr &&
			  pe->flags == want[n].flags,
		      "entry %d: %#llx %u %#x\n", n, (unsigned long long)pe->vaddr, pe->nr_pages,
		      pe->flags);
		if (pe->flags & PE_PRESENT) {
			size_t len = (size_t)pe->nr_pages * PAGE_SIZE;
			uint8_t *buf = malloc(len);

			check(buf && !pread_full(pfd, buf, len, off), "read entry %d\n", n);
			check(pe->has_amber_csum2 && !pe->has_amber_csum &&
				  pe->amber_csum2 == amber_csum2(buf, len, pe->vaddr),
			      "entry %d checksum (version 2 only)\n", n);
			off += len;
			free(buf);
		} else {
			check(!pe->has_amber_csum && !pe->has_amber_csum2,
			      "hole with a checksum\n");
		}
		pagemap_entry__free_unpacked(pe, NULL);
		n++;
	}
	check(n == nr_want, "%d entries, want %d\n", n, nr_want);
	img_close(img);
	check(!fstat(pfd, &st) && st.st_size == 1303 * (off_t)PAGE_SIZE, "pages size\n");
	check((st.st_mode & 0777) == 0600, "pages mode %o\n", st.st_mode & 0777);
	check(!fstatat(dirfd, "pagemap-77.img", &st, 0) && (st.st_mode & 0777) == 0600,
	      "pagemap mode\n");
	/* a symlink planted where an image goes is not followed */
	check(!symlinkat("/tmp/amber-xfer-test-target", dirfd, "pagemap-78.img"), "symlink\n");
	t = xfer_target_local(dirfd, &pages_id);
	check(xfer_open(t, XFER_TASK, 78, &x) != 0, "opened through a symlink\n");
	check(access("/tmp/amber-xfer-test-target", F_OK) != 0, "wrote through a symlink\n");
	xfer_target_fini(t);
	close(pfd);
	close(dirfd);
	free(a);
	free(b);
	free(c);
}

/* A failed fill or a failed write (by the writer thread) fails the add or the close. */
static void test_local_errors(const char *dir)
{
	int dirfd = open(dir, O_DIRECTORY | O_RDONLY);
	uint32_t pages_id = 20;
	struct xfer_target *t = xfer_target_local(dirfd, &pages_id);
	uint8_t *a = pattern(2048, 4);
	struct fill_src src = {a, 100 * PAGE_SIZE};
	struct rlimit old, lim = {1 << 20, 1 << 20};
	struct xfer *x = NULL;
	int ret;

	check(t && a && !xfer_open(t, XFER_TASK, 80, &x), "open\n");
	check(xfer_add_fill(x, 0x10000000, 200, fill_from, &src) == -ENOSPC, "fill error lost\n");
	check(!xfer_close(x), "close after a failed fill\n");

	/* pages-22.img may grow to 1 MiB: the writer's write() fails with EFBIG */
	signal(SIGXFSZ, SIG_IGN);
	getrlimit(RLIMIT_FSIZE, &old);
	src.fail_at = 0;
	check(!xfer_open(t, XFER_TASK, 81, &x), "open 2\n");
	ret = setrlimit(RLIMIT_FSIZE, &lim);
	check(!ret, "setrlimit\n");
	ret = xfer_add_fill(x, 0x10000000, 2048, fill_from, &src);
	check(ret == 0 || ret == -EIO, "add after a failed write: %d\n", ret);
	check(xfer_close(x) == -EFBIG, "write error lost\n");
	setrlimit(RLIMIT_FSIZE, &old);
	signal(SIGXFSZ, SIG_DFL);
	xfer_target_fini(t);
	close(dirfd);
	free(a);
}

int main(void)
{
	char dir[] = "/tmp/amber-xfer-XXXXXX";

	log_init(NULL, 1, 0);
	if (!mkdtemp(dir))
		return 1;
	test_codec();
	test_local(dir);
	test_local_errors(dir);
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd))
		nfail++;
	printf("%s\n", nfail ? "FAIL" : "PASS");
	return nfail ? 1 : 0;
}
