// SPDX-License-Identifier: MIT
/*
 * Unit test of idx_map (src/base/idx_map.h), the hash the socket dump and
 * restore look sockets up by inode with: every key put is found with its
 * latest index through growth, keys never put are not, and keys that
 * collide in the low bits (inodes in runs, multiples of the table size)
 * still each find their own.
 */
#define LOG_PREFIX "test: "
#include "base/idx_map.h"
#include "unit.h"

/* Puts @nr keys key(i) -> i, then checks them all and @nr keys never put. */
static void check_keys(const char *name, int nr, uint64_t (*key)(int i),
		       uint64_t (*absent)(int i))
{
	struct idx_map m = {};
	char why[256] = "";

	for (int i = 0; i < nr && !why[0]; i++)
		UNIT_EXPECT(why, !idx_map_put(&m, key(i), i), "put %d failed", i);
	UNIT_EXPECT(why, m.nr == (size_t)nr, "%zu keys, not %d", m.nr, nr);
	for (int i = 0; i < nr && !why[0]; i++)
		UNIT_EXPECT(why, idx_map_get(&m, key(i)) == i, "key %d: %d", i,
			    idx_map_get(&m, key(i)));
	for (int i = 0; i < nr && !why[0]; i++)
		UNIT_EXPECT(why, idx_map_get(&m, absent(i)) == -1, "absent key %d found", i);
	idx_map_free(&m);
	UNIT_EXPECT(why, !m.slots && !m.cap && idx_map_get(&m, key(0)) == -1,
		    "not empty after free");
	unit_check(name, !why[0], "%s", why);
}

static uint64_t run(int i) { return 40000 + i; }
static uint64_t after_run(int i) { return 40000 + 100000 + i; }
static uint64_t strided(int i) { return (uint64_t)i << 20; }
static uint64_t strided_odd(int i) { return ((uint64_t)i << 20) + 1; }
static uint64_t big(int i) { return ~0ull - (uint64_t)i * 7; }
static uint64_t big_absent(int i) { return ~0ull - (uint64_t)i * 7 - 1; }

int main(void)
{
	struct idx_map m = {};
	char why[256] = "";

	unit_init();
	UNIT_EXPECT(why, idx_map_get(&m, 0) == -1, "an empty map found key 0");
	UNIT_EXPECT(why, !idx_map_put(&m, 0, 5) && idx_map_get(&m, 0) == 5, "key 0");
	UNIT_EXPECT(why, !idx_map_put(&m, 0, 9) && idx_map_get(&m, 0) == 9 && m.nr == 1,
		    "a second put of key 0 did not replace the first");
	idx_map_free(&m);
	unit_check("replace", !why[0], "%s", why);
	check_keys("inode run", 10000, run, after_run);
	check_keys("strided keys", 5000, strided, strided_odd);
	check_keys("large keys", 3000, big, big_absent);
	return unit_done("idx_map");
}
