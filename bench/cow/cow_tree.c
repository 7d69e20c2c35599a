// SPDX-License-Identifier: MIT
/*
 * cow_tree MIB KIDS PIDFILE RESULTS: a parent fills MIB MiB of private
 * anonymous memory with non-zero pseudo-random data and forks KIDS
 * children that never write it, then writes its pid to PIDFILE. On
 * SIGTERM each task sums its memory again and appends "ok PID" or
 * "bad PID" to RESULTS, then exits.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

static volatile sig_atomic_t stop;
static uint64_t *mem, sum;
static size_t words;

static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

static uint64_t sum_all(void)
{
	uint64_t s = 0;

	for (size_t i = 0; i < words; i++)
		s = (s ^ mem[i]) * 0x100000001b3ULL;
	return s;
}

static void wait_and_check(const char *results)
{
	char line[64];
	int fd, n;

	while (!stop)
		usleep(20000); /* no pause(): a SIGTERM before it would be lost */
	n = snprintf(line, sizeof(line), "%s %d\n", sum_all() == sum ? "ok" : "bad", getpid());
	fd = open(results, O_WRONLY | O_APPEND | O_CREAT, 0600);
	if (fd < 0 || write(fd, line, n) != n)
		_exit(1);
	_exit(0);
}

int main(int argc, char **argv)
{
	size_t len;
	uint64_t x = 0x9e3779b97f4a7c15ULL;
	int kids;
	FILE *f;

	if (argc != 5)
		return fprintf(stderr, "usage: cow_tree MIB KIDS PIDFILE RESULTS\n"), 2;
	len = strtoul(argv[1], NULL, 0) << 20;
	kids = atoi(argv[2]);
	words = len / 8;
	signal(SIGTERM, on_term);
	mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return perror("mmap"), 1;
	for (size_t i = 0; i < words; i++) {
		x ^= x >> 12, x ^= x << 25, x ^= x >> 27;
		mem[i] = x * 0x2545f4914f6cdd1dULL | 1;
	}
	sum = sum_all();
	for (int k = 0; k < kids; k++) {
		pid_t p = fork();

		if (p < 0)
			return perror("fork"), 1;
		if (p == 0)
			wait_and_check(argv[4]);
	}
	f = fopen(argv[3], "w");
	if (!f || fprintf(f, "%d\n", getpid()) < 0 || fclose(f))
		return perror("pidfile"), 1;
	wait_and_check(argv[4]);
}
