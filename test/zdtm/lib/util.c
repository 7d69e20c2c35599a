// SPDX-License-Identifier: GPL-2.0
/* util.c - checksummed data, futexes and /proc/self/maps helpers. */
#include <limits.h>
#include <linux/futex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "zdtm.h"

/* Four independent FNV-style lanes over 64-bit words: fast and order-aware. */
#define PRIME 0x100000001b3ULL

static uint32_t fold(const uint64_t h[4], size_t len)
{
	uint64_t x = h[0] ^ (h[1] * 3) ^ (h[2] * 5) ^ (h[3] * 7) ^ len;

	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	return (uint32_t)x ^ (uint32_t)(x >> 32);
}

uint32_t datasum(const void *buf, size_t len)
{
	const char *p = buf;
	uint64_t h[4] = { 1, 2, 3, 4 }, w;
	size_t n = len / 8, i;

	for (i = 0; i < n; i++) {
		memcpy(&w, p + i * 8, 8); /* buf need not be aligned */
		h[i & 3] = (h[i & 3] ^ w) * PRIME;
	}
	return fold(h, n * 8);
}

void datagen(void *buf, size_t len, uint32_t *crc)
{
	uint64_t s = 0x9e3779b97f4a7c15ULL * (*crc + 1), w;
	uint64_t h[4] = { 1, 2, 3, 4 };
	size_t n = len / 8, i;
	char *p = buf;

	for (i = 0; i < n; i++) {
		s ^= s >> 12;
		s ^= s << 25;
		s ^= s >> 27;
		w = s * 0x2545f4914f6cdd1dULL;
		memcpy(p + i * 8, &w, 8);
		h[i & 3] = (h[i & 3] ^ w) * PRIME;
	}
	*crc = fold(h, n * 8);
}

int datachk(const void *buf, size_t len, const uint32_t *crc)
{
	return datasum(buf, len) == *crc ? 0 : -1;
}

void futex_wake_all(volatile int *addr)
{
	syscall(SYS_futex, addr, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

void futex_wait_while(volatile int *addr, int val)
{
	while (*addr == val)
		syscall(SYS_futex, addr, FUTEX_WAIT, val, NULL, NULL, 0);
}

static int maps_scan(const void *addr, size_t len, char perms[5])
{
	unsigned long a = (unsigned long)addr, start, end;
	char line[512], p[5];
	FILE *f = fopen("/proc/self/maps", "r");
	int found = 0;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx %4s", &start, &end, p) != 3)
			continue;
		if (start < a + len && a < end) {
			if (perms)
				memcpy(perms, p, 5);
			found = 1;
			break;
		}
	}
	fclose(f);
	return found;
}

int vma_perms(const void *addr, char perms[5])
{
	return maps_scan(addr, 1, perms) == 1 ? 0 : -1;
}

int vma_mapped(const void *addr, size_t len)
{
	return maps_scan(addr, len, NULL);
}

static int sig_unblocked(pid_t pid, int sig)
{
	char path[64], line[128];
	int unblocked = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "SigBlk:", 7))
			unblocked = !(strtoull(line + 7, NULL, 16) & (1ULL << (sig - 1)));
	fclose(f);
	return unblocked;
}

int wait_in_sigwait(pid_t pid, int sig)
{
	for (int i = 0; i < 5000; i++) {
		if (sig_unblocked(pid, sig))
			return 0;
		usleep(1000);
	}
	return -1;
}
