// SPDX-License-Identifier: GPL-2.0
/*
 * seccomp and no_new_privs per thread: the main thread has no_new_privs
 * and one filter (mincore fails with errno 77), a second thread the same
 * filter and one more of its own (getcpu fails with 78), a third thread is
 * in strict mode, blocked in read(). After the restore /proc shows the
 * same modes, filter counts and no_new_privs, and the filters still act.
 */
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "zdtm.h"

static pthread_barrier_t ready;
static volatile int done;
static int strict_pipe[2];
static char err_b[128];
static pid_t tids[3];

static int deny(int nr, int err)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, nr, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | err),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { sizeof(f) / sizeof(f[0]), f };

	return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog);
}

/* errno of the filtered calls: mincore should give 77, getcpu 78 where denied. */
static int err_of(long nr)
{
	unsigned cpu;
	char vec;

	errno = 0;
	if (nr == SYS_mincore)
		syscall(SYS_mincore, &ready, 4096, &vec);
	else
		syscall(SYS_getcpu, &cpu, NULL, NULL);
	return errno;
}

static void *filtered(void *arg __attribute__((unused)))
{
	tids[1] = gettid();
	if (deny(SYS_mincore, 77) || deny(SYS_getcpu, 78))
		snprintf(err_b, sizeof(err_b), "seccomp: %s", strerror(errno));
	pthread_barrier_wait(&ready);
	futex_wait_while(&done, 0);
	if (!err_b[0] && (err_of(SYS_mincore) != 77 || err_of(SYS_getcpu) != 78))
		snprintf(err_b, sizeof(err_b), "filters lost: mincore %d, getcpu %d",
			 err_of(SYS_mincore), err_of(SYS_getcpu));
	return NULL;
}

static void *strict(void *arg __attribute__((unused)))
{
	sigset_t all;
	char c;

	tids[2] = gettid();
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, NULL); /* no handler may run here */
	pthread_barrier_wait(&ready);
	prctl(PR_SET_SECCOMP, SECCOMP_MODE_STRICT);
	if (read(strict_pipe[0], &c, 1) != 1)
		c = 0;
	syscall(SYS_exit, c == 'x' ? 0 : 1); /* exit, not exit_group: allowed */
	return NULL;
}

/* "Seccomp: M" "Seccomp_filters: F" "NoNewPrivs: N" of thread @tid. */
static int status_of(pid_t tid, int *mode, int *filters, int *nnp)
{
	char path[64], line[256];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/task/%d/status", tid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	*mode = *filters = *nnp = -1;
	while (fgets(line, sizeof(line), f)) {
		sscanf(line, "Seccomp: %d", mode);
		sscanf(line, "Seccomp_filters: %d", filters);
		sscanf(line, "NoNewPrivs: %d", nnp);
	}
	fclose(f);
	return 0;
}

int main(int argc, char **argv)
{
	static const int want[3][3] = { { 2, 1, 1 }, { 2, 2, 0 }, { 1, 0, 0 } };
	pthread_t b, c;
	int m, n, p;

	test_init(argc, argv);
	if (pipe(strict_pipe))
		return fail_errno("pipe"), 1;
	pthread_barrier_init(&ready, NULL, 3);
	if (pthread_create(&b, NULL, filtered, NULL) || pthread_create(&c, NULL, strict, NULL))
		return fail("pthread_create"), 1;
	pthread_barrier_wait(&ready);
	if (err_b[0])
		return fail("%s", err_b), 1;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || deny(SYS_mincore, 77))
		return fail_errno("seccomp"), 1;
	tids[0] = gettid();
	for (int i = 0; i < 200 && (status_of(tids[2], &m, &n, &p) || m != 1); i++)
		usleep(5000);
	for (int i = 0; i < 3; i++)
		if (status_of(tids[i], &m, &n, &p) || m != want[i][0] || n != want[i][1] ||
		    p != want[i][2])
			return fail("setup: thread %d: %d %d %d", i, m, n, p), 1;
	test_daemon();
	test_waitsig();

	for (int i = 0; i < 3; i++)
		if (status_of(tids[i], &m, &n, &p) || m != want[i][0] || n != want[i][1] ||
		    p != want[i][2])
			return fail("thread %d: seccomp %d, filters %d, no_new_privs %d; want %d %d %d",
				    i, m, n, p, want[i][0], want[i][1], want[i][2]), 1;
	if (err_of(SYS_mincore) != 77 || err_of(SYS_getcpu) == 78)
		return fail("main thread filter: mincore %d, getcpu %d", err_of(SYS_mincore),
			    err_of(SYS_getcpu)), 1;
	done = 1;
	futex_wake_all(&done);
	pthread_join(b, NULL);
	if (err_b[0])
		return fail("second thread: %s", err_b), 1;
	if (write(strict_pipe[1], "x", 1) != 1)
		return fail_errno("write"), 1;
	pthread_join(c, NULL);
	pass();
	return 0;
}
