// SPDX-License-Identifier: MIT
/*
 * The benchmark's target: MIB MiB of anonymous memory, every word a
 * non-zero pseudo-random value, so no page is the zero page and nothing
 * can be skipped or compressed. It daemonizes (init reaps it when the dump
 * kills it, so its pid is free for the restore), writes its pid to PIDFILE
 * and sleeps; start it with stdio on /dev/null. On SIGUSR1 it recomputes
 * the checksum of its memory and writes OK or MISMATCH to RESULT, which
 * shows the restore was faithful.
 *
 *   hog MIB PIDFILE RESULT
 */
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fill.h"

static volatile sig_atomic_t check_asked;

static void on_usr1(int sig)
{
	check_asked = 1;
}

static int write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return -1;
	fputs(text, f);
	return fclose(f);
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_usr1 };
	size_t len;
	uint64_t *mem, sum;
	char pid[32];
	pid_t child;

	if (argc != 4) {
		fprintf(stderr, "usage: hog MIB PIDFILE RESULT\n");
		return 2;
	}
	/* Only stdio goes into the image: no pipe to whoever started us. */
	close_range(3, ~0U, 0);
	len = strtoull(argv[1], NULL, 0) << 20;
	mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		perror("hog: mmap");
		return 1;
	}
	sum = bench_fill(mem, len);
	sigaction(SIGUSR1, &sa, NULL);
	child = fork();
	if (child < 0)
		return 1;
	if (child) {
		/* write then rename, so the reader never sees half a pid */
		char tmp[4096];

		snprintf(tmp, sizeof(tmp), "%s.tmp", argv[2]);
		snprintf(pid, sizeof(pid), "%d\n", child);
		if (write_file(tmp, pid) || rename(tmp, argv[2]))
			return 1;
		return 0;
	}
	setsid();
	for (;;) {
		pause();
		if (!check_asked)
			continue;
		check_asked = 0;
		write_file(argv[3], bench_sum(mem, len) == sum ? "OK\n" : "MISMATCH\n");
	}
}
