// SPDX-License-Identifier: GPL-2.0
/*
 * NR_THREADS threads (built as threads_2 and threads_16), each with its own
 * thread-local data, its own blocked signal mask and its own name
 * (PR_SET_NAME); all survive.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "zdtm.h"

#ifndef NR_THREADS
#define NR_THREADS 2
#endif
#define TLS_BYTES 4096

static __thread uint64_t tls[TLS_BYTES / 8];
static pthread_barrier_t ready;
static volatile int done;

static int blocked_sig(int i)
{
	return SIGRTMIN + 1 + i % (SIGRTMAX - SIGRTMIN - 1);
}

static void *worker(void *arg)
{
	long i = (long)arg;
	uint32_t crc = 1000 + i;
	char name[16], now[16] = "";
	sigset_t set, cur;

	snprintf(name, sizeof(name), "zdtm-worker-%ld", i);
	prctl(PR_SET_NAME, name);
	datagen(tls, TLS_BYTES, &crc);
	sigemptyset(&set);
	sigaddset(&set, blocked_sig(i));
	if (i & 1)
		sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_SETMASK, &set, NULL);
	pthread_barrier_wait(&ready);
	futex_wait_while(&done, 0);

	pthread_sigmask(SIG_SETMASK, NULL, &cur);
	if (datachk(tls, TLS_BYTES, &crc))
		return (void *)"thread-local data mismatch";
	if (!sigismember(&cur, blocked_sig(i)) ||
	    sigismember(&cur, SIGUSR1) != (int)(i & 1) ||
	    sigismember(&cur, blocked_sig(i + 1)))
		return (void *)"signal mask mismatch";
	prctl(PR_GET_NAME, now);
	if (strcmp(now, name))
		return (void *)"thread name mismatch";
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t th[NR_THREADS];
	void *res;
	long i;

	test_init(argc, argv);
	pthread_barrier_init(&ready, NULL, NR_THREADS + 1);
	for (i = 0; i < NR_THREADS; i++)
		if (pthread_create(&th[i], NULL, worker, (void *)i))
			return fail("pthread_create"), 1;
	pthread_barrier_wait(&ready);
	test_daemon();
	test_waitsig();

	done = 1;
	futex_wake_all(&done);
	for (i = 0; i < NR_THREADS; i++) {
		if (pthread_join(th[i], &res))
			return fail("pthread_join"), 1;
		if (res)
			return fail("thread %ld: %s", i, (char *)res), 1;
	}
	pass();
	return 0;
}
