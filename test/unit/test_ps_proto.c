// SPDX-License-Identifier: MIT
/*
 * Unit test of the page-server codec (src/pageserver/proto.h, conn.h):
 * every command round-trips through both header layouts with its fields
 * at CRIU's offsets, the layout of a first header is detected, dst_id
 * types decode (legacy numbers too); over a socketpair, a header cut short
 * is an error and not a clean EOF; and ps_lazy_serve_get() on a fixture dump
 * answers a good GET with the pages and refuses oversized, misaligned,
 * out-of-range and corrupt requests with PS_IOV_ERR and the errno.
 */
#define LOG_PREFIX "test: "
#include <sys/socket.h>

#include "pageserver/conn.h"
#include "pageserver/proto.h"
#include "pageserver/server.h"
#include "unit.h"

#define PID 4242
#define A0  0x400000ull
#define PG  PAGE_SIZE

static const struct {
	const char *name;
	struct ps_iov iov;
} cmds[] = {
	{"ADD", {PS_IOV_ADD, 0, 3, A0, (PID << 8) | PS_TYPE_PID}},
	{"HOLE", {PS_IOV_HOLE, 0, 5, A0 + PG, (PID << 8) | PS_TYPE_PID}},
	{"OPEN", {PS_IOV_OPEN, 0, 0, 0, (PID << 8) | PS_TYPE_PID}},
	{"OPEN2", {PS_IOV_OPEN2, 0, 0, 0, (PID << 8) | PS_TYPE_PID}},
	{"OPEN2 shmem", {PS_IOV_OPEN2, 0, 0, 0, (99ull << 8) | PS_TYPE_SHMEM}},
	{"PARENT", {PS_IOV_PARENT, 0, 0, 0, (PID << 8) | PS_TYPE_PID}},
	{"ADD_F present", {PS_IOV_ADD_F, PE_PRESENT, 64, 0x7ffffffff000ull, (PID << 8) | 1}},
	{"ADD_F parent", {PS_IOV_ADD_F, PE_PARENT, 1 << 20, A0, (PID << 8) | 1}},
	{"ADD_F lazy|present", {PS_IOV_ADD_F, PE_LAZY | PE_PRESENT, 2, A0, (PID << 8) | 1}},
	{"GET", {PS_IOV_GET, 0, 16, A0, PID}},
	{"GET shmem", {PS_IOV_GET, PS_GET_SHMEM, 16, 0x2000, 123456789}},
	{"CLOSE", {PS_IOV_CLOSE, 0, 0, 0, 0}},
	{"FORCE_CLOSE", {PS_IOV_FORCE_CLOSE, 0, 0, 0, 0}},
	{"ERR", {PS_IOV_ERR, 0, 0, A0, EINVAL}},
};

/* Round trips and byte offsets, both layouts. */
static void test_codec(void)
{
	for (size_t i = 0; i < ARRAY_SIZE(cmds); i++) {
		for (int w = PS_WIRE_24; w <= PS_WIRE_32; w++) {
			const struct ps_iov *in = &cmds[i].iov;
			uint8_t buf[PS_HDR_MAX + 8];
			struct ps_iov out;
			char name[64], why[256] = "";
			uint32_t cmd, nr32;
			uint64_t nr64, va, dst;
			size_t sz = ps_hdr_size(w);

			memset(buf, 0xa5, sizeof(buf));
			ps_encode(w, in, buf);
			ps_decode(w, buf, &out);
			snprintf(name, sizeof(name), "%s, %d-byte layout", cmds[i].name,
				 w == PS_WIRE_24 ? 24 : 32);
			UNIT_EXPECT(why, sz == (w == PS_WIRE_24 ? 24u : 32u), "size %zu", sz);
			UNIT_EXPECT(why, !memcmp(in, &out, sizeof(out)), "decodes to cmd %#x flags %#x "
				    "nr %llu va %#llx dst %#llx", out.cmd, out.flags,
				    (unsigned long long)out.nr_pages, (unsigned long long)out.vaddr,
				    (unsigned long long)out.dst_id);
			UNIT_EXPECT(why, buf[sz] == 0xa5, "wrote past the header");
			memcpy(&cmd, buf, 4);
			UNIT_EXPECT(why, cmd == (in->flags << 16 | in->cmd), "cmd word %#x", cmd);
			if (w == PS_WIRE_24) {
				memcpy(&nr32, buf + 4, 4);
				memcpy(&va, buf + 8, 8);
				memcpy(&dst, buf + 16, 8);
				UNIT_EXPECT(why, nr32 == in->nr_pages && va == in->vaddr &&
					    dst == in->dst_id, "fields not at 4/8/16");
			} else {
				memcpy(&nr32, buf + 4, 4);
				memcpy(&nr64, buf + 8, 8);
				memcpy(&va, buf + 16, 8);
				memcpy(&dst, buf + 24, 8);
				UNIT_EXPECT(why, !nr32 && nr64 == in->nr_pages && va == in->vaddr &&
					    dst == in->dst_id, "fields not at 8/16/24 or pad not 0");
			}
			unit_check(name, !why[0], "%s", why);
		}
	}
	{
		struct ps_iov in = {PS_IOV_ADD_F, PE_PRESENT, (1ull << 32) + 5, A0, 1}, out;
		uint8_t buf[PS_HDR_MAX];

		ps_encode(PS_WIRE_32, &in, buf);
		ps_decode(PS_WIRE_32, buf, &out);
		unit_check("32-byte layout carries 64-bit nr_pages", out.nr_pages == in.nr_pages,
			   "got %llu", (unsigned long long)out.nr_pages);
		ps_encode(PS_WIRE_24, &in, buf);
		ps_decode(PS_WIRE_24, buf, &out);
		unit_check("24-byte layout carries 32 bits of nr_pages", out.nr_pages == 5,
			   "got %llu", (unsigned long long)out.nr_pages);
	}
}

static void test_detect(void)
{
	static const struct {
		const char *name;
		struct ps_iov iov;
		int wire, want;
	} t[] = {
		{"detect OPEN2/24", {PS_IOV_OPEN2, 0, 0, 0, (PID << 8) | 1}, PS_WIRE_24, PS_WIRE_24},
		{"detect OPEN2/32", {PS_IOV_OPEN2, 0, 0, 0, (PID << 8) | 1}, PS_WIRE_32, PS_WIRE_32},
		{"detect OPEN/24", {PS_IOV_OPEN, 0, 0, 0, (PID << 8) | 1}, PS_WIRE_24, PS_WIRE_24},
		{"detect OPEN/32", {PS_IOV_OPEN, 0, 0, 0, (PID << 8) | 1}, PS_WIRE_32, PS_WIRE_32},
		{"detect PARENT/24", {PS_IOV_PARENT, 0, 0, 0, (PID << 8) | 1}, PS_WIRE_24, PS_WIRE_24},
		{"detect PARENT/32", {PS_IOV_PARENT, 0, 0, 0, (PID << 8) | 1}, PS_WIRE_32, PS_WIRE_32},
		{"detect GET/24", {PS_IOV_GET, 0, 1, A0, PID}, PS_WIRE_24, PS_WIRE_24},
		{"detect GET/32", {PS_IOV_GET, 0, 1, A0, PID}, PS_WIRE_32, PS_WIRE_32},
		{"detect GET shmem/32", {PS_IOV_GET, PS_GET_SHMEM, 3, 0, 7}, PS_WIRE_32, PS_WIRE_32},
		{"detect other commands default to 24", {PS_IOV_CLOSE, 0, 0, 0, 0}, PS_WIRE_32,
		 PS_WIRE_24},
	};

	for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
		uint8_t buf[PS_HDR_MAX];
		int got;

		ps_encode(t[i].wire, &t[i].iov, buf);
		got = ps_wire_detect(buf);
		unit_check(t[i].name, got == t[i].want, "got %d", got);
	}
}

static void test_dst(void)
{
	static const struct {
		const char *name;
		uint64_t dst, id;
		int want;
	} t[] = {
		{"dst pid", (77ull << 8) | PS_TYPE_PID, 77, PS_TYPE_PID},
		{"dst shmem", (5ull << 8) | PS_TYPE_SHMEM, 5, PS_TYPE_SHMEM},
		{"dst legacy pid 10", (1ull << 8) | 10, 1, PS_TYPE_PID},
		{"dst legacy pid 11", (2ull << 8) | 11, 2, PS_TYPE_PID},
		{"dst legacy pid 16", (3ull << 8) | 16, 3, PS_TYPE_PID},
		{"dst legacy pid 17", (4ull << 8) | 17, 4, PS_TYPE_PID},
		{"dst legacy shmem 27", (6ull << 8) | 27, 6, PS_TYPE_SHMEM},
		{"dst legacy shmem 34", (9ull << 8) | 34, 9, PS_TYPE_SHMEM},
		{"dst type 0 refused", 7ull << 8, 7, -1},
		{"dst type 3 refused", (7ull << 8) | 3, 7, -1},
		{"dst type 255 refused", (7ull << 8) | 255, 7, -1},
		{"dst largest id", ~0ull << 8 | PS_TYPE_PID, ~0ull >> 8, PS_TYPE_PID},
	};

	for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
		uint64_t id = 0;
		int got = ps_decode_dst(t[i].dst, &id);

		unit_check(t[i].name, got == t[i].want && id == t[i].id, "type %d id %llu", got,
			   (unsigned long long)id);
	}
	unit_check("ps_encode_dst inverts ps_decode_dst",
		   ps_encode_dst(PS_TYPE_SHMEM, 12345) == ((12345ull << 8) | 2), "differs");
}

static void conn_pair(struct ps_conn *a, int *peer, enum ps_wire w)
{
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv)) {
		perror("socketpair");
		exit(2);
	}
	memset(a, 0, sizeof(*a));
	a->fd = sv[0];
	a->wire = w;
	snprintf(a->peer, sizeof(a->peer), "unit");
	*peer = sv[1];
}

/* Frames on a socket: whole, cut short, empty. */
static void test_frames(void)
{
	static const struct {
		const char *name;
		int wire;	/* layout the receiver expects; -1: ps_recv_first_iov */
		int send_wire;	/* layout of the header sent */
		size_t send;	/* bytes of it sent before the peer hangs up */
		int want;
	} t[] = {
		{"frame: whole 24-byte header", PS_WIRE_24, PS_WIRE_24, 24, 0},
		{"frame: whole 32-byte header", PS_WIRE_32, PS_WIRE_32, 32, 0},
		{"frame: first header, 24-byte layout", -1, PS_WIRE_24, 24, 0},
		{"frame: first header, 32-byte layout", -1, PS_WIRE_32, 32, 0},
		{"frame: EOF before a header is clean", PS_WIRE_24, PS_WIRE_24, 0, 1},
		{"frame: first, EOF before a header is clean", -1, PS_WIRE_24, 0, 1},
		{"frame: 24-byte header cut short", PS_WIRE_24, PS_WIRE_24, 23, -ECONNRESET},
		{"frame: one byte of a header", PS_WIRE_24, PS_WIRE_24, 1, -ECONNRESET},
		{"frame: 32-byte header cut at 24", PS_WIRE_32, PS_WIRE_32, 24, -ECONNRESET},
		{"frame: first 32-byte header cut at 24", -1, PS_WIRE_32, 24, -ECONNRESET},
		{"frame: first header cut at 10", -1, PS_WIRE_24, 10, -ECONNRESET},
	};
	const struct ps_iov get = {PS_IOV_GET, 0, 3, A0, PID};

	for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
		struct ps_conn c;
		struct ps_iov out = {0};
		uint8_t buf[PS_HDR_MAX];
		char why[256] = "";
		int peer, ret;

		conn_pair(&c, &peer, t[i].wire < 0 ? PS_WIRE_24 : t[i].wire);
		ps_encode(t[i].send_wire, &get, buf);
		if (write(peer, buf, t[i].send) != (ssize_t)t[i].send)
			snprintf(why, sizeof(why), "can't send");
		close(peer);
		ret = t[i].wire < 0 ? ps_recv_first_iov(&c, &out) : ps_recv_iov(&c, &out);
		UNIT_EXPECT(why, ret == t[i].want, "returned %d, want %d", ret, t[i].want);
		if (!ret)
			UNIT_EXPECT(why, !memcmp(&out, &get, sizeof(out)) &&
				    (int)c.wire == t[i].send_wire, "decoded wrong (wire %d)", c.wire);
		ps_conn_close(&c);
		unit_check(t[i].name, !why[0], "%s", why);
	}
}

/* The reply header, and its page data if any, from @peer. */
static int read_reply(int peer, enum ps_wire w, struct ps_iov *rep, uint8_t *data, size_t max)
{
	struct ps_conn c = {.fd = peer, .wire = w};
	int ret = ps_recv_iov(&c, rep);

	if (ret)
		return ret;
	if (rep->cmd == PS_IOV_ADD_F && rep->nr_pages) {
		if (rep->nr_pages * PG > max)
			return -E2BIG;
		return ps_conn_recv(&c, data, rep->nr_pages * PG);
	}
	return 0;
}

/* GETs served from a fixture dump: the pages, a hole, or PS_IOV_ERR with an errno. */
static void test_serve(int dirfd)
{
	static const struct unit_ent ents[] = {{A0, 4, PE_PRESENT}, {A0 + 8 * PG, 2, PE_PRESENT}, {}};
	static const struct unit_ent shm[] = {{0, 2, PE_PRESENT}, {}};
	static const struct unit_ent bad[] = {{A0, 2, PE_PRESENT}, {}};
	static const struct {
		const char *name;
		struct ps_iov get;
		int want_err;	 /* 0: an ADD_F reply */
		uint64_t want_nr; /* pages in the ADD_F reply (0: a hole) */
		uint64_t seed;	 /* fixture data of the pages */
	} t[] = {
		{"GET one page", {PS_IOV_GET, 0, 1, A0 + PG, PID}, 0, 1, 1},
		{"GET a whole run", {PS_IOV_GET, 0, 4, A0, PID}, 0, 4, 1},
		{"GET past a run's end gets what the run has", {PS_IOV_GET, 0, 8, A0 + 2 * PG, PID},
		 0, 2, 1},
		{"GET of a hole", {PS_IOV_GET, 0, 1, A0 + 5 * PG, PID}, 0, 0, 1},
		{"GET shmem pages", {PS_IOV_GET, PS_GET_SHMEM, 2, 0, 55}, 0, 2, 2},
		{"GET oversized refused", {PS_IOV_GET, 0, PS_MAX_NR_PAGES + 1, A0, PID}, E2BIG},
		{"GET of no pages refused", {PS_IOV_GET, 0, 0, A0, PID}, E2BIG},
		{"GET unaligned refused", {PS_IOV_GET, 0, 1, A0 + 1, PID}, ERANGE},
		{"GET above user space refused", {PS_IOV_GET, 0, 1, PS_TASK_SIZE, PID}, ERANGE},
		{"GET with an unknown flag refused", {PS_IOV_GET, 0x1, 1, A0, PID}, EINVAL},
		{"GET for pid 0 refused", {PS_IOV_GET, 0, 1, A0, 0}, ESRCH},
		{"GET for a pid above the limit refused", {PS_IOV_GET, 0, 1, A0, 1 << 23}, ESRCH},
		{"GET for a pid not in the dump", {PS_IOV_GET, 0, 1, A0, PID + 1}, ESRCH},
		{"GET for a shmid not in the dump", {PS_IOV_GET, PS_GET_SHMEM, 1, 0, 56}, ESRCH},
		{"GET of corrupt pages refused", {PS_IOV_GET, 0, 1, A0, PID + 2}, EBADMSG},
	};
	struct ps_lazy_images *li;
	uint8_t *data = malloc(16 * PG);

	if (unit_write_pagemap(dirfd, IMG_PAGEMAP, PID, 1, ents, 1) ||
	    unit_write_pagemap(dirfd, IMG_SHMEM_PAGEMAP, 55, 2, shm, 2) ||
	    unit_write_pagemap(dirfd, IMG_PAGEMAP, PID + 2, 3, bad, 3) ||
	    unit_flip_byte(dirfd, "pages-3.img", PG + 7) || !data) {
		unit_check("serve fixture", false, "can't write it");
		free(data);
		return;
	}
	li = ps_lazy_open(dirfd);
	for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
		for (int w = PS_WIRE_24; w <= PS_WIRE_32; w++) {
			struct ps_conn c;
			struct ps_iov rep;
			char name[96], why[256] = "";
			int peer, ret;

			snprintf(name, sizeof(name), "%s, %d-byte layout", t[i].name,
				 w == PS_WIRE_24 ? 24 : 32);
			conn_pair(&c, &peer, w);
			ret = ps_lazy_serve_get(li, &c, &t[i].get);
			UNIT_EXPECT(why, !ret, "lazy_serve_get: %d", ret);
			ret = read_reply(peer, w, &rep, data, 16 * PG);
			UNIT_EXPECT(why, !ret, "no reply: %d", ret);
			if (t[i].want_err) {
				UNIT_EXPECT(why, rep.cmd == PS_IOV_ERR && rep.dst_id == (uint64_t)t[i].want_err &&
					    rep.vaddr == t[i].get.vaddr, "reply cmd %#x err %llu, want "
					    "PS_IOV_ERR %d", rep.cmd, (unsigned long long)rep.dst_id,
					    t[i].want_err);
			} else {
				UNIT_EXPECT(why, rep.cmd == PS_IOV_ADD_F && rep.nr_pages == t[i].want_nr &&
					    rep.vaddr == t[i].get.vaddr && rep.dst_id == t[i].get.dst_id &&
					    rep.flags == (t[i].want_nr ? PE_PRESENT : 0u),
					    "reply cmd %#x flags %#x nr %llu", rep.cmd, rep.flags,
					    (unsigned long long)rep.nr_pages);
				for (uint64_t p = 0; p < rep.nr_pages && !why[0]; p++)
					UNIT_EXPECT(why, unit_page_is(data + p * PG, t[i].seed,
								      t[i].get.vaddr + p * PG),
						    "page %llu is not the dump's", (unsigned long long)p);
			}
			/* nothing more on the wire than the reply */
			shutdown(c.fd, SHUT_WR);
			UNIT_EXPECT(why, read(peer, data, 1) == 0, "bytes after the reply");
			close(peer);
			ps_conn_close(&c);
			unit_check(name, !why[0], "%s", why);
		}
	}
	ps_lazy_close(li);
	free(data);
}

int main(void)
{
	char root[64];
	int rootfd;

	unit_init();
	test_codec();
	test_detect();
	test_dst();
	test_frames();
	rootfd = unit_tmpdir(root, "ps");
	test_serve(rootfd);
	close(rootfd);
	unit_rmrf(root);
	return unit_done("test_ps_proto");
}
