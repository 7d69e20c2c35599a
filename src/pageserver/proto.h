/* SPDX-License-Identifier: MIT */
#ifndef AMBER_PS_PROTO_H
#define AMBER_PS_PROTO_H

/*
 * CRIU's page-server wire protocol (criu/page-xfer.c), as amber speaks it.
 *
 * Every request is one fixed-size header, native byte order (x86-64 only
 * talks to x86-64, as in CRIU):
 *
 *   24-byte layout (CRIU up to 4.1, Debian's 3.17):
 *     u32 cmd | u32 nr_pages | u64 vaddr | u64 dst_id
 *   32-byte layout (CRIU after nr_pages became u64 in 2025):
 *     u32 cmd | u32 pad | u64 nr_pages | u64 vaddr | u64 dst_id
 *
 * cmd: low 16 bits the command, high 16 bits flags (PE_* for ADD_F).
 * dst_id: (id << 8) | type, type 1 = task pagemap (id = pid), 2 = shmem
 * pagemap (id = shmid); older CRIUs sent other type numbers (accepted).
 * For GET, dst_id is the plain pid (or, with PS_GET_SHMEM, the plain shmid).
 *
 * Dump side (the client streams pages into the server's directory):
 *   OPEN2 dst        -> server replies 1 byte: has a parent image
 *   OPEN dst         -> no reply (old clients)
 *   PARENT dst       -> server replies a 4-byte int: parent exists
 *   ADD_F|flags<<16  -> nr_pages*4096 bytes follow iff flags has PE_PRESENT
 *   ADD              -> same as ADD_F with PE_PRESENT
 *   HOLE             -> same as ADD_F with PE_PARENT, no data
 *   CLOSE (0x1023), FORCE_CLOSE (0x1024; FLUSH/FLUSH_N_CLOSE in older
 *   CRIUs) -> server replies a 4-byte int32 status (0 = all written)
 * Lazy side (a lazy-pages daemon pulls pages from a served dump):
 *   GET nr vaddr pid -> ADD_F|PE_PRESENT<<16 with nr' <= nr pages at vaddr,
 *                       then nr' pages of data
 *   GET|PS_GET_SHMEM<<16 nr off shmid -> the same, from the shmem object
 *                       shmid (pagemap-shmem-<shmid>.img), off its offset
 *
 * amber's additions, sent only by an amber server and only where stock
 * CRIU would have closed the connection:
 *   GET on an address not in the dump -> ADD_F, flags 0, nr_pages 0: a hole
 *   a bad request -> PS_IOV_ERR with dst_id = positive errno, vaddr echoed
 * and one a client sends, to an amber server only:
 *   PS_GET_SHMEM, a GET flag: dst_id is a shmid (shared anonymous memory
 *   or a memfd, as the dump named it) and vaddr the page-aligned offset in
 *   that object, which post-copy needs besides the tasks' pages. Stock
 *   CRIU never sets a GET flag, so an amber server refuses any other
 *   (EINVAL). CRIU's server, and amber's before this flag, ignore flags on
 *   GET and would take the shmid for a pid: a client must know its server.
 */
#include <stdbool.h>
#include <stdint.h>

#define PS_IOV_ADD	   1
#define PS_IOV_HOLE	   2
#define PS_IOV_OPEN	   3
#define PS_IOV_OPEN2	   4
#define PS_IOV_PARENT	   5
#define PS_IOV_ADD_F	   6
#define PS_IOV_GET	   7
#define PS_IOV_CLOSE	   0x1023
#define PS_IOV_FORCE_CLOSE 0x1024
#define PS_IOV_ERR	   0x1100 /* amber only */

#define PS_CMD_BITS   16
#define PS_CMD_MASK   ((1u << PS_CMD_BITS) - 1)
#define PS_TYPE_BITS  8
#define PS_TYPE_MASK  ((1u << PS_TYPE_BITS) - 1)
#define PS_TYPE_PID   1
#define PS_TYPE_SHMEM 2

/*
 * GET flags (struct ps_iov .flags). PS_GET_SHMEM takes the top bit, far
 * from the PE_* flags (bits 0-2) that ADD_F carries, so that no flag CRIU
 * may add one day collides with it.
 */
#define PS_GET_SHMEM 0x8000	  /* amber only: dst_id is a shmid, vaddr an offset */
#define PS_GET_FLAGS PS_GET_SHMEM /* every GET flag a server accepts */

enum ps_wire {
	PS_WIRE_24, /* default: what Debian's criu speaks */
	PS_WIRE_32,
};

#define PS_HDR_MAX 32

/* A decoded header; cmd and flags already split. */
struct ps_iov {
	uint32_t cmd;
	uint32_t flags;
	uint64_t nr_pages;
	uint64_t vaddr;
	uint64_t dst_id;
};

/* Largest request amber accepts or sends: 4 GiB of pages per header. */
#define PS_MAX_NR_PAGES (1ull << 20)
/* User addresses on x86-64 (also bounds shmem offsets). */
#define PS_TASK_SIZE (1ull << 47)

static inline uint64_t ps_encode_dst(int type, uint64_t id)
{
	return id << PS_TYPE_BITS | (uint64_t)type;
}

/* PS_TYPE_PID or PS_TYPE_SHMEM and *id, or -1 for an unknown type. */
int ps_decode_dst(uint64_t dst_id, uint64_t *id);

size_t ps_hdr_size(enum ps_wire w);
void ps_encode(enum ps_wire w, const struct ps_iov *pi, uint8_t *out);
void ps_decode(enum ps_wire w, const uint8_t *in, struct ps_iov *pi);
/*
 * Guesses the layout from the first 24 bytes a client sent. OPEN/OPEN2/
 * PARENT carry a non-zero dst_id at offset 16 only in the 24-byte layout;
 * a GET has a non-zero nr_pages at offset 4 only in the 24-byte layout.
 */
enum ps_wire ps_wire_detect(const uint8_t first[24]);

#endif
