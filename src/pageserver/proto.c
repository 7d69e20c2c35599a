// SPDX-License-Identifier: MIT
/* Encoding and decoding of page-server headers (layouts in pageserver/proto.h). */
#include <string.h>

#include "pageserver/proto.h"

int ps_decode_dst(uint64_t dst_id, uint64_t *id)
{
	*id = dst_id >> PS_TYPE_BITS;
	switch (dst_id & PS_TYPE_MASK) {
	case PS_TYPE_PID:
	case 10: /* the numbers older CRIUs used for task pagemaps */
	case 11:
	case 16:
	case 17:
		return PS_TYPE_PID;
	case PS_TYPE_SHMEM:
	case 27: /* ... and for shmem pagemaps */
	case 28:
	case 29:
	case 32:
	case 33:
	case 34:
		return PS_TYPE_SHMEM;
	}
	return -1;
}

size_t ps_hdr_size(enum ps_wire w)
{
	return w == PS_WIRE_32 ? 32 : 24;
}

static void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, sizeof(v));
}

static void put64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, sizeof(v));
}

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

void ps_encode(enum ps_wire w, const struct ps_iov *pi, uint8_t *out)
{
	memset(out, 0, ps_hdr_size(w));
	put32(out, pi->flags << PS_CMD_BITS | (pi->cmd & PS_CMD_MASK));
	if (w == PS_WIRE_32) {
		put64(out + 8, pi->nr_pages);
		put64(out + 16, pi->vaddr);
		put64(out + 24, pi->dst_id);
	} else {
		put32(out + 4, (uint32_t)pi->nr_pages);
		put64(out + 8, pi->vaddr);
		put64(out + 16, pi->dst_id);
	}
}

void ps_decode(enum ps_wire w, const uint8_t *in, struct ps_iov *pi)
{
	uint32_t cmd = get32(in);

	pi->cmd = cmd & PS_CMD_MASK;
	pi->flags = cmd >> PS_CMD_BITS;
	if (w == PS_WIRE_32) {
		pi->nr_pages = get64(in + 8);
		pi->vaddr = get64(in + 16);
		pi->dst_id = get64(in + 24);
	} else {
		pi->nr_pages = get32(in + 4);
		pi->vaddr = get64(in + 8);
		pi->dst_id = get64(in + 16);
	}
}

enum ps_wire ps_wire_detect(const uint8_t first[24])
{
	uint32_t cmd = get32(first) & PS_CMD_MASK;

	switch (cmd) {
	case PS_IOV_OPEN:
	case PS_IOV_OPEN2:
	case PS_IOV_PARENT:
		return get64(first + 16) ? PS_WIRE_24 : PS_WIRE_32;
	case PS_IOV_GET:
		return get32(first + 4) ? PS_WIRE_24 : PS_WIRE_32;
	}
	return PS_WIRE_24;
}
