// SPDX-License-Identifier: MIT
/*
 * amber.sums: img_sums_check() of a directory, the first check of every
 * restore (image/sums.h).
 *
 * Input: u8 flags | a packed image set (common.h), amber.sums among it.
 *   flags & 1: recompute the list's own checksum (the "end" line) over
 *              what precedes it, as a dump would (FNV-1a 64 for an
 *              "amber-sums 1" list, img_sum() otherwise), so the per-line
 *              parser and the per-image checks behind it are reached
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/util.h"
#include "common.h"
#include "image/sums.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fz_init();
	return 0;
}

static void fix_end(int dirfd)
{
	size_t len;
	char *text = read_file_at(dirfd, IMG_SUMS_NAME, &len), *p, *nl, tail[32];
	uint64_t h = 0xcbf29ce484222325ULL;
	bool v1;
	int fd;

	if (!text)
		return;
	v1 = !strncmp(text, "amber-sums 1\n", 13);
	for (p = text; (nl = memchr(p, '\n', len - (p - text))) && strncmp(p, "end ", 4);
	     p = nl + 1)
		for (char *c = p; v1 && c <= nl; c++)
			h = (h ^ (uint8_t)*c) * 0x100000001b3ULL;
	if (!v1)
		h = img_sum(text, p - text);
	fd = openat(dirfd, IMG_SUMS_NAME, O_WRONLY | O_TRUNC | O_CLOEXEC);
	if (fd >= 0) {
		int n = snprintf(tail, sizeof(tail), "end %016" PRIx64 "\n", h);

		if (write(fd, text, p - text) < 0 || write(fd, tail, n) < 0)
			abort();
		close(fd);
	}
	free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int dirfd;

	fz_fds_begin();

	if (!size)
		return 0;
	dirfd = fz_fresh_dir();
	fz_unpack(dirfd, data + 1, size - 1);
	if (data[0] & 1)
		fix_end(dirfd);
	img_sums_check(dirfd);
	close(dirfd);
	fz_fds_end();
	return 0;
}
