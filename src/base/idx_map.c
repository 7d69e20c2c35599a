// SPDX-License-Identifier: MIT
/* A 64-bit key to array index hash map (idx_map.h). */
#include <errno.h>
#include <stdlib.h>

#include "base/idx_map.h"

/* Fibonacci hashing: inodes come in runs, the multiply spreads them. */
static size_t slot_of(const struct idx_map *m, uint64_t key)
{
	return (size_t)((key * 0x9e3779b97f4a7c15ull) >> 32) & (m->cap - 1);
}

static struct idx_map_slot *find_slot(const struct idx_map *m, uint64_t key)
{
	size_t i = slot_of(m, key);

	while (m->slots[i].idx >= 0 && m->slots[i].key != key)
		i = (i + 1) & (m->cap - 1);
	return &m->slots[i];
}

static int grow(struct idx_map *m)
{
	size_t cap = m->cap ? m->cap * 2 : 64;
	struct idx_map old = *m;
	struct idx_map_slot *s = malloc(cap * sizeof(*s));

	if (!s)
		return -ENOMEM;
	for (size_t i = 0; i < cap; i++)
		s[i].idx = -1;
	m->slots = s;
	m->cap = cap;
	for (size_t i = 0; i < old.cap; i++)
		if (old.slots[i].idx >= 0)
			*find_slot(m, old.slots[i].key) = old.slots[i];
	free(old.slots);
	return 0;
}

int idx_map_put(struct idx_map *m, uint64_t key, int idx)
{
	struct idx_map_slot *s;
	int ret;

	/* At most half full: probes stay short. */
	if ((m->nr + 1) * 2 > m->cap && (ret = grow(m)))
		return ret;
	s = find_slot(m, key);
	if (s->idx < 0)
		m->nr++;
	s->key = key;
	s->idx = idx;
	return 0;
}

int idx_map_get(const struct idx_map *m, uint64_t key)
{
	return m->cap ? find_slot(m, key)->idx : -1;
}

void idx_map_free(struct idx_map *m)
{
	free(m->slots);
	*m = (struct idx_map){};
}
