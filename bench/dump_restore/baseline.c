// SPDX-License-Identifier: MIT
/*
 * What the dump and the restore are measured against, the same bytes with
 * nothing in between:
 *
 *   baseline write MIB FILE   one write() of a touched buffer to a new FILE
 *   baseline read MIB FILE    one read() of FILE into fresh (never touched)
 *                             anonymous memory, so the page faults that a
 *                             restore pays are paid here too; FILE is removed
 *
 * Each prints the nanoseconds its one call took (open to close). The
 * benchmark runs them right before the dump and the restore, so that each
 * pair sees the same machine.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "fill.h"

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/* read() and write() move at most 2 GiB - 4 KiB per call: loop on short counts. */
static int xfer(int fd, char *buf, size_t len, int do_write)
{
	while (len) {
		ssize_t n = do_write ? write(fd, buf, len) : read(fd, buf, len);

		if (n <= 0)
			return -1;
		buf += n;
		len -= n;
	}
	return 0;
}

int main(int argc, char **argv)
{
	int do_write = argc == 4 && !strcmp(argv[1], "write");
	uint64_t t0, t1, sum;
	size_t len;
	void *buf;
	int fd;

	if (argc != 4 || (!do_write && strcmp(argv[1], "read"))) {
		fprintf(stderr, "usage: baseline write|read MIB FILE\n");
		return 2;
	}
	len = strtoull(argv[2], NULL, 0) << 20;
	buf = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED) {
		perror("baseline: mmap");
		return 1;
	}
	if (do_write)
		sum = bench_fill(buf, len);

	t0 = now_ns();
	fd = do_write ? open(argv[3], O_WRONLY | O_CREAT | O_TRUNC, 0600) : open(argv[3], O_RDONLY);
	if (fd < 0 || xfer(fd, buf, len, do_write) || close(fd)) {
		perror(argv[3]);
		unlink(argv[3]);
		return 1;
	}
	t1 = now_ns();

	if (!do_write) {
		unlink(argv[3]);
		/* what was written, so a short or wrong read can't pass for fast */
		sum = bench_sum(buf, len);
		if (bench_fill(buf, len) != sum) {
			fprintf(stderr, "baseline: read back other data than written\n");
			return 1;
		}
	}
	printf("%llu\n", (unsigned long long)(t1 - t0));
	return 0;
}
