// SPDX-License-Identifier: MIT
/*
 * The workload of `make demo`: 256 MiB of memory that it keeps changing,
 * and about every 0.5 s a line with a counter, the checksum of all that
 * memory and whether the memory still matches it. The checksum is kept
 * up to date word by word as the workload writes, and each line compares
 * it with a fresh pass over the whole 256 MiB: OK after a restore shows
 * the memory came back intact, MISMATCH shows it did not.
 *
 *   demo_workload LOGFILE       prints the pid of the workload and returns
 *
 * It writes to LOGFILE (O_APPEND) rather than to the terminal: a restore
 * gives it its fds back, and a regular file is still there afterwards,
 * where a pipe to whoever started it would not be.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define MEM_BYTES (256UL << 20)
#define NR_WORDS  (MEM_BYTES / 8)
#define STRIPES	  8 /* one stripe of the memory is rewritten per line */

/* What word i holding w adds to the checksum: a sum, so one word's change
 * can be taken out and put in without a pass over the rest. */
static uint64_t mix(uint64_t i, uint64_t w)
{
	uint64_t x = w + i * 0x9e3779b97f4a7c15ULL;

	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	return x ^ (x >> 33);
}

static uint64_t full_sum(const uint64_t *mem)
{
	uint64_t s = 0;

	for (uint64_t i = 0; i < NR_WORDS; i++)
		s += mix(i, mem[i]);
	return s;
}

static uint64_t rewrite_stripe(uint64_t *mem, uint64_t counter, uint64_t sum)
{
	uint64_t per = NR_WORDS / STRIPES, first = (counter % STRIPES) * per;

	for (uint64_t i = first; i < first + per; i++) {
		uint64_t w = mem[i] * 6364136223846793005ULL + counter;

		sum += mix(i, w) - mix(i, mem[i]);
		mem[i] = w;
	}
	return sum;
}

static int run(int log)
{
	uint64_t *mem = mmap(NULL, MEM_BYTES, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct timespec half = { 0, 500 * 1000 * 1000 };
	uint64_t sum = 0, counter = 0;

	if (mem == MAP_FAILED) {
		dprintf(log, "mmap: out of memory\n");
		return 1;
	}
	for (uint64_t i = 0; i < NR_WORDS; i++) {
		mem[i] = i * 2654435761ULL + 1;
		sum += mix(i, mem[i]);
	}
	for (;;) {
		int ok;

		counter++;
		sum = rewrite_stripe(mem, counter, sum);
		ok = full_sum(mem) == sum;
		dprintf(log, "counter %4llu   checksum %016llx   memory %s\n",
			(unsigned long long)counter, (unsigned long long)sum,
			ok ? "OK" : "MISMATCH");
		if (!ok)
			return 1;
		nanosleep(&half, NULL);
	}
}

int main(int argc, char **argv)
{
	int log, null;
	pid_t pid;

	if (argc != 2) {
		fprintf(stderr, "usage: demo_workload LOGFILE\n");
		return 2;
	}
	log = open(argv[1], O_WRONLY | O_CREAT | O_APPEND, 0644);
	null = open("/dev/null", O_RDWR);
	if (log < 0 || null < 0) {
		perror(argv[1]);
		return 1;
	}
	pid = fork();
	if (pid < 0) {
		perror("fork");
		return 1;
	}
	if (pid) {
		printf("%d\n", pid);
		return 0;
	}
	/*
	 * Its own session, stdio on /dev/null, the log on fd 3 and no other
	 * fd: nothing ties it to the shell that started it.
	 */
	setsid();
	dup2(null, 0);
	dup2(null, 1);
	dup2(null, 2);
	if (log != 3 && dup2(log, 3) != 3)
		return 1;
	close_range(4, ~0U, 0);
	return run(3);
}
