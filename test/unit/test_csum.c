// SPDX-License-Identifier: MIT
/*
 * The page checksum (base/csum.h): version 2 (amber_csum2, pagemap field
 * 1001) sees every single-bit flip, in one piece or streamed; version 1
 * (amber_csum, field 1000 of older dumps) is still the value older builds
 * wrote, so their images still verify.
 */
#define LOG_PREFIX "test: "
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "base/csum.h"
#include "unit.h"

/* The same pattern as the pins below were taken over (with an older build's csum.h). */
static void fill_pattern(uint8_t *buf, size_t len)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(i * 131 + (i >> 8));
}

/* Single-bit flips of the first @len bytes of @buf that leave @sum's value as it was. */
static int missed_flips(uint8_t *buf, size_t len, uint64_t seed,
			uint64_t (*sum)(const void *, size_t, uint64_t))
{
	uint64_t h = sum(buf, len, seed);
	int missed = 0;

	for (size_t bit = 0; bit < len * 8; bit++) {
		buf[bit / 8] ^= 1u << bit % 8;
		missed += sum(buf, len, seed) == h;
		buf[bit / 8] ^= 1u << bit % 8;
	}
	return missed;
}

static void test_flips(void)
{
	static const uint64_t seeds[] = {0, 0x400000, 0x7ffff7dd1000ull};
	static uint8_t buf[4096];
	int missed = 0, missed_zero = 0, v1_missed;
	uint64_t v1, v2;
	size_t len;

	fill_pattern(buf, sizeof(buf));
	for (size_t s = 0; s < sizeof(seeds) / sizeof(seeds[0]); s++) {
		for (len = 1; len <= 200; len++)
			missed += missed_flips(buf, len, seeds[s], amber_csum2);
		missed += missed_flips(buf, 4096, seeds[s], amber_csum2);
	}
	unit_check("version 2: every single-bit flip of 1..200 and 4096 bytes seen", !missed,
		   "%d missed", missed);

	/* a zero page is the commonest page there is */
	memset(buf, 0, sizeof(buf));
	missed_zero = missed_flips(buf, 4096, 0x400000, amber_csum2);
	unit_check("version 2: every single-bit flip of a zero page seen", !missed_zero,
		   "%d missed", missed_zero);

	/* the bit the defect was about: bit 7 of byte 31 */
	fill_pattern(buf, sizeof(buf));
	v1_missed = missed_flips(buf, 128, 0, amber_csum);
	unit_check("version 1 misses some flips (why version 2 exists)", v1_missed > 0,
		   "missed none");
	v1 = amber_csum(buf, 4096, 0x400000);
	v2 = amber_csum2(buf, 4096, 0x400000);
	buf[31] ^= 0x80;
	unit_check("version 1 misses the top bit of byte 31", amber_csum(buf, 4096, 0x400000) == v1,
		   "it sees it now: version 1 changed");
	unit_check("version 2 sees the top bit of byte 31", amber_csum2(buf, 4096, 0x400000) != v2,
		   "missed");
	buf[31] ^= 0x80;

	/* a zero byte more or less is another buffer */
	memset(buf, 0, 256);
	missed = 0;
	for (len = 0; len < 255; len++)
		missed += amber_csum2(buf, len, 0) == amber_csum2(buf, len + 1, 0);
	unit_check("version 2: lengths told apart over zeros", !missed, "%d equal", missed);
}

/* Streamed in 32-byte-multiple pieces, as the dump and restore take it: the same value. */
static void test_streamed(void)
{
	static uint8_t buf[3 * 4096 + 40];
	struct amber_csum_ctx s;
	int bad = 0;

	fill_pattern(buf, sizeof(buf));
	for (size_t piece = 32; piece <= 8192; piece *= 2) {
		for (unsigned int ver = AMBER_CSUM_V1; ver <= AMBER_CSUM_V2; ver++) {
			amber_csum_init(&s, 0x400000);
			for (size_t at = 0; at < sizeof(buf); at += piece)
				amber_csum_add(&s, buf + at,
					       sizeof(buf) - at < piece ? sizeof(buf) - at : piece);
			bad += amber_csum_end_ver(&s, ver) !=
			       amber_csum_ver(buf, sizeof(buf), 0x400000, ver);
		}
	}
	unit_check("streamed in pieces equals one piece, both versions", !bad, "%d differ", bad);
	unit_check("amber_csum_ver picks the version",
		   amber_csum_ver(buf, 4096, 1, AMBER_CSUM_V1) == amber_csum(buf, 4096, 1) &&
		   amber_csum_ver(buf, 4096, 1, AMBER_CSUM_V2) == amber_csum2(buf, 4096, 1),
		   "it does not");
}

/*
 * Pinned values. Version 1's were taken with the csum.h of the build before
 * version 2: an older dump's field 1000 must still match. Version 2's are
 * the format (docs/images.md): a change here breaks every dump written.
 */
static void test_pinned(void)
{
	static uint8_t buf[8192];
	uint64_t v1a, v1b, v2a;

	fill_pattern(buf, sizeof(buf));
	v1a = amber_csum(buf, 4096, 0x400000);
	v1b = amber_csum(buf, 8192, 0x7f1234567000ull);
	unit_check("version 1 is the older builds' sum", v1a == 0xab5711f6dd244d60ull &&
		   v1b == 0xb62fee3c5b04f680ull, "%#llx %#llx", (unsigned long long)v1a,
		   (unsigned long long)v1b);
	v2a = amber_csum2(buf, 4096, 0x400000);
	unit_check("version 2 is as documented", v2a == 0xb9e8635f00f308edull, "%#llx",
		   (unsigned long long)v2a);
}

int main(void)
{
	unit_init();
	test_flips();
	test_streamed();
	test_pinned();
	return unit_done("test_csum");
}
