// SPDX-License-Identifier: GPL-2.0
/*
 * A thread started before the first dump, and one more by each change:
 * each fills 64 KiB on its own stack with its own data and waits.  At
 * SIGTERM every thread checks its data and the main thread joins them all.
 */
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include "zdtm.h"

#define MAX_THREADS 64
#define BUF_BYTES (64 << 10)

static volatile int ready, done;

static void *worker(void *arg)
{
	long i = (long)arg;
	uint32_t crc = 1000 + i, crc2 = 1000 + i;
	char buf[BUF_BYTES], want[BUF_BYTES];

	datagen(buf, sizeof(buf), &crc);
	__atomic_add_fetch(&ready, 1, __ATOMIC_SEQ_CST);
	futex_wake_all(&ready);
	futex_wait_while(&done, 0);

	datagen(want, sizeof(want), &crc2);
	if (crc != crc2 || memcmp(buf, want, sizeof(buf)))
		return (void *)"stack data mismatch";
	return NULL;
}

/* Start thread i with SIGTERM and SIGUSR1 blocked; wait until it is ready. */
static int start(pthread_t *th, long i)
{
	sigset_t set, old;
	int r, cur;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, &old);
	r = pthread_create(th, NULL, worker, (void *)i);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r)
		return -1;
	while ((cur = ready) <= i)
		futex_wait_while(&ready, cur);
	return 0;
}

int main(int argc, char **argv)
{
	pthread_t th[MAX_THREADS];
	long i, k, n = 0;
	void *res;

	test_init(argc, argv);
	if (start(&th[0], 0))
		return fail("pthread_create"), 1;
	test_iter_init();
	test_daemon();

	while ((k = test_iter_wait()) > 0) {
		if (k < MAX_THREADS) {
			if (start(&th[k], k))
				return fail("pthread_create %ld", k), 1;
			n = k;
		}
		test_iter_ack(k);
	}

	done = 1;
	futex_wake_all(&done);
	for (i = 0; i <= n; i++) {
		if (pthread_join(th[i], &res))
			return fail("pthread_join %ld", i), 1;
		if (res)
			return fail("thread %ld of %ld: %s", i, n + 1,
				    (char *)res), 1;
	}
	pass();
	return 0;
}
