// SPDX-License-Identifier: GPL-2.0
/*
 * Faults that meet a pending event: after SIGTERM one thread reads 16 MiB
 * of lazily restored memory backwards while another keeps MADV_DONTNEEDing
 * a page elsewhere. Each DONTNEED is an event that makes copies fail with
 * -EAGAIN until it is read and its originator goes on; a daemon that
 * queued such a fault and never retried it would leave the reader asleep
 * for good (the runner's timeout fails the test). The data is checked.
 */
#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>

#include "zdtm.h"

#define PG  4096UL
#define NPG 4096UL

static uint8_t *m, *other;
static volatile int reading_done;

static void *reader(void *arg __attribute__((unused)))
{
	uint64_t bad = 0;

	for (long i = NPG - 1; i >= 0; i--)
		bad += m[i * PG] != (uint8_t)(1 + i % 200) || m[i * PG + PG - 1] != (uint8_t)(1 + i % 200);
	reading_done = 1;
	return (void *)(uintptr_t)bad;
}

static void *remover(void *arg __attribute__((unused)))
{
	for (int k = 0; !reading_done && k < 100000; k++) {
		madvise(other, PG, MADV_DONTNEED);
		if (k % 4 == 3)
			usleep(300);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t r, d;
	void *bad;

	test_init(argc, argv);
	m = mmap(NULL, NPG * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	other = mmap(NULL, 16 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED || other == MAP_FAILED)
		return fail_errno("mmap"), 1;
	for (size_t i = 0; i < NPG; i++)
		memset(m + i * PG, 1 + i % 200, PG);
	memset(other, 7, 16 * PG);
	test_daemon();
	test_waitsig();

	if (pthread_create(&r, NULL, reader, NULL) || pthread_create(&d, NULL, remover, NULL))
		return fail_errno("pthread_create"), 1;
	pthread_join(r, &bad);
	pthread_join(d, NULL);
	if (bad)
		fail("%lu pages read wrong", (unsigned long)(uintptr_t)bad);
	else
		pass();
	return 0;
}
