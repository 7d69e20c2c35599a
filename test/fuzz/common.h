/* SPDX-License-Identifier: MIT */
#ifndef AMBER_FUZZ_COMMON_H
#define AMBER_FUZZ_COMMON_H

/*
 * What the harnesses share: a scratch directory per input (on tmpfs), and
 * the "image set" input format several of them take, a packed directory:
 *
 *   repeated { u8 namelen | name | u32 len (LE) | len bytes }
 *
 * name is a file name, optionally under "parent/" (any depth, never
 * ".."), as an incremental chain lays them out. A pages-N.img record of
 * exactly 8 bytes is a sparse file of that u64 size (low 32 bits), so a
 * seed need not carry megabytes of page data to get past the size checks.
 * A truncated record ends the set. test/fuzz/pack.py writes this format.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Once per process: log to /dev/null, make the scratch root. */
void fz_init(void);
/* An empty scratch directory (the same path every time); its fd. */
int fz_fresh_dir(void);
/* Its path. */
const char *fz_dir_path(void);
/* Unpacks a packed set into @dirfd; how many files it wrote. */
int fz_unpack(int dirfd, const uint8_t *data, size_t size);
/* The same for a set held in a file (a template): malloc'ed bytes, *size. */
uint8_t *fz_read_file(const char *path, size_t *size);

/*
 * The other end of a stream connection, in a thread (one for the process,
 * serving one peer at a time): runs @before (if any: e.g. answer a
 * challenge), writes @data, shuts its writing side and reads everything
 * until the connection closes, so the code under test never blocks on a
 * reply nobody reads.
 */
struct fz_peer {
	int fd;
	const uint8_t *data;
	size_t size;
	void (*before)(struct fz_peer *p);
	void *arg;
};

/* A socketpair: *mine for the code under test, the other end to @p. */
int fz_peer_start(struct fz_peer *p, int *mine);
void fz_peer_join(struct fz_peer *p);
/* HMAC-SHA256(token, nonce || "amber-ps-auth-v1"): what a client answers. */
void fz_auth_mac(const uint8_t *token, size_t tlen, const uint8_t *nonce, uint8_t mac[32]);
/* A 0600 token file in the scratch root: its path and contents. */
const char *fz_token_file(const uint8_t **token, size_t *len);
/* Reads the server's challenge from @fd; the right reply into @reply. 0 or -1. */
int fz_token_reply(int fd, uint8_t reply[8 + 32]);

/*
 * Around every input: fz_fds_end() aborts if more fds are open than at
 * fz_fds_begin() (a leak, which the sanitizers don't see and which would
 * end a long-running keeper or server at EMFILE). Between inputs libFuzzer
 * may open its own (the symbolizer's pipes), so each input is compared
 * with its own start.
 */
/*
 * The next record of an input made of records (u8 ctl, u16 len, len
 * bytes; a short last one is cut to what is left): false at the end.
 */
bool fz_record(const uint8_t *data, size_t size, size_t *at, uint8_t *ctl,
	       const uint8_t **msg, uint16_t *len);

void fz_fds_begin(void);
void fz_fds_end(void);

#endif
