/* SPDX-License-Identifier: MIT */
#ifndef AMBER_IDX_MAP_H
#define AMBER_IDX_MAP_H

/*
 * A map from a 64-bit key (an inode, an id) to an index into the
 * caller's array, so that the object met again by key is found in O(1)
 * instead of by a scan of everything seen so far (a tree may hold
 * thousands of sockets). Open addressing, linear probing; zeroed = empty.
 * Indices are >= 0; -1 means none.
 */
#include <stddef.h>
#include <stdint.h>

struct idx_map_slot {
	uint64_t key;
	int idx; /* -1: empty */
};

struct idx_map {
	struct idx_map_slot *slots;
	size_t cap, nr; /* cap: 0 or a power of two */
};

/* Maps @key to @idx (>= 0), replacing an earlier one. 0 or -ENOMEM. */
int idx_map_put(struct idx_map *m, uint64_t key, int idx);
/* The index mapped from @key, or -1. */
int idx_map_get(const struct idx_map *m, uint64_t key);
void idx_map_free(struct idx_map *m);

#endif
