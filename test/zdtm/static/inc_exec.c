// SPDX-License-Identifier: GPL-2.0
/*
 * Change k forks a child that execs this program as worker k (--inc-worker=K,
 * no test_init): it fills 1 MiB of fresh anonymous memory and 64 KiB of
 * .bss with its own data, reports ready through a pipe and waits for
 * SIGTERM, then checks its memory and exits 0.  The root also rewrites one
 * 64 KiB block of its own .bss per change and checks all of it.
 */
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "zdtm.h"

#define BLOCK (64 << 10)
#define NR_BLOCKS 16
#define WORKER_BYTES (1 << 20)

static char mem[NR_BLOCKS][BLOCK], scratch[BLOCK];
static volatile int stop;

static void on_term(int sig)
{
	(void)sig;
	stop = 1;
	futex_wake_all(&stop);
}

static void fill(char *block, uint32_t seed)
{
	datagen(block, BLOCK, &seed);
}

static int worker(int k, int fd)
{
	struct sigaction sa = { .sa_handler = on_term };
	uint32_t crc1 = 1000 + k, crc2 = 2000 + k;
	char *map;

	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGTERM, &sa, NULL))
		return 2;
	map = mmap(NULL, WORKER_BYTES, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (map == MAP_FAILED)
		return 3;
	datagen(map, WORKER_BYTES, &crc1);
	datagen(mem, sizeof(mem), &crc2);
	if (write(fd, "R", 1) != 1 || close(fd))
		return 4;
	futex_wait_while(&stop, 0);
	if (datachk(map, WORKER_BYTES, &crc1) || datachk(mem, sizeof(mem), &crc2))
		return 5;
	return 0;
}

int main(int argc, char **argv)
{
	char exe[PATH_MAX], arg[2][32], c;
	pid_t child[NR_BLOCKS];
	int i, k, n = 0, p[2], status;
	ssize_t len;

	if (argc == 3 && !strncmp(argv[1], "--inc-worker=", 13))
		return worker(atoi(argv[1] + 13), atoi(argv[2]));
	test_init(argc, argv);
	len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (len < 0)
		return fail_errno("readlink"), 1;
	exe[len] = 0;
	for (i = 0; i < NR_BLOCKS; i++)
		fill(mem[i], i);
	test_iter_init();
	test_daemon();

	while ((k = test_iter_wait()) > 0) {
		if (k < NR_BLOCKS) {
			if (pipe2(p, O_CLOEXEC))
				return fail_errno("pipe"), 1;
			snprintf(arg[0], sizeof(arg[0]), "--inc-worker=%d", k);
			snprintf(arg[1], sizeof(arg[1]), "%d", p[1]);
			child[k] = fork();
			if (child[k] < 0)
				return fail_errno("fork %d", k), 1;
			if (child[k] == 0) {
				fcntl(p[1], F_SETFD, 0);
				execl(exe, exe, arg[0], arg[1], (char *)NULL);
				_exit(127);
			}
			close(p[1]);
			/* the byte, then EOF: the worker closes its end after the write */
			if (read(p[0], &c, 1) != 1 || read(p[0], &c, 1) != 0)
				return fail("worker %d died", k), 1;
			close(p[0]);
			fill(mem[k], 100 + k);
			n = k;
		}
		test_iter_ack(k);
	}

	for (i = 0; i < NR_BLOCKS; i++)
		if (fill(scratch, i >= 1 && i <= n ? 100 + i : i),
		    memcmp(scratch, mem[i], BLOCK))
			return fail("root: block %d mismatch after %d changes",
				    i, n), 1;
	for (k = 1; k <= n; k++) {
		kill(child[k], SIGTERM);
		if (waitpid(child[k], &status, 0) != child[k])
			return fail_errno("waitpid %d", child[k]), 1;
		if (!WIFEXITED(status) || WEXITSTATUS(status))
			return fail("worker %d: status %#x", k, status), 1;
	}
	pass();
	return 0;
}
