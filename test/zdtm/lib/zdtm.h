/* SPDX-License-Identifier: GPL-2.0 */
/*
 * zdtm.h - the zdtm test protocol.
 *
 * A test is started as  TEST --pidfile=PIDFILE --outfile=OUTFILE [--opt=VAL]
 * with stdin on /dev/null and stdout/stderr on a file.
 *
 *   test_init()    parses the options, forks; the parent waits until the
 *                  child calls test_daemon() (and every copy of the
 *                  ready pipe is closed), writes the child's pid to
 *                  PIDFILE (PIDFILE.tmp + rename) and exits 0 (non-zero if
 *                  the child dies first, 77 if it called test_skip()).
 *                  The child calls setsid(), opens OUTFILE.inprogress on
 *                  fds 1 and 2 and installs a SIGTERM handler that sets
 *                  test_stop.
 *   test_daemon()  "my state is set up": releases the parent.
 *   test_waitsig() blocks (futex) until SIGTERM has been received.
 *   test_iter_*()  tests named inc_* change their state between the
 *                  iterations of incremental dumps; see below.
 *   pass()/fail()  write the last line, "PASS" or "FAIL: reason", and
 *                  rename OUTFILE.inprogress to OUTFILE.
 *
 * A test that exits without calling pass() or fail() gets a FAIL line.
 */
#ifndef ZDTM_H
#define ZDTM_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <string.h>

/* Set to 1 by the SIGTERM handler; a futex word. */
extern volatile int test_stop;

void test_init(int argc, char **argv);
void test_daemon(void);
void test_waitsig(void);

/*
 * Iterations (tests named inc_*, modes pre-dump and snaps): after each
 * pre-dump or snapshot K (1, 2, ...) the runner sends SIGUSR1 to the root
 * and waits until the file iter-K appears in the test's directory.
 *
 *   test_iter_init() installs the SIGUSR1 handler (call before test_daemon;
 *                    children inherit it, only the root gets SIGUSR1).
 *   test_iter_wait() blocks until a SIGUSR1 not yet returned (returns the
 *                    iteration number K = 1, 2, ...: signals are counted,
 *                    none is lost) or SIGTERM (returns 0).  Pending
 *                    iterations come first.  On SIGTERM it also checks
 *                    that iter-(K+1) does not exist, i.e. that the
 *                    counter in memory did not go back; if it did, it
 *                    fails the test and exits.
 *   test_iter_ack(K) "change K is done": creates iter-K in the cwd.
 *
 * Usage:  test_iter_init(); test_daemon();
 *         while ((k = test_iter_wait()) > 0) { change k; test_iter_ack(k); }
 *         verify the state after the changes made (0, 1, 2, ...).
 */
void test_iter_init(void);
int test_iter_wait(void);
void test_iter_ack(int k);

/* Value of a test-specific option --NAME=VAL, or NULL. */
const char *test_opt(const char *name);

void test_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void pass(void);
void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Before test_daemon() only: the test cannot run here; exits. */
void test_skip(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));

#define pr_perror(fmt, ...)                                                    \
	test_msg("%s:%d: " fmt ": %s\n", __FILE__, __LINE__, ##__VA_ARGS__,    \
		 strerror(errno))

/* Fail with errno text, used as: if (x < 0) return fail_errno("x"), 1; */
#define fail_errno(fmt, ...)                                                   \
	fail("%s:%d: " fmt ": %s", __FILE__, __LINE__, ##__VA_ARGS__,          \
	     strerror(errno))

/*
 * Checksummed data: datagen() fills buf with pseudo-random bytes seeded by
 * *crc and stores the checksum of buf in *crc; datachk() returns 0 if the
 * checksum of buf equals *crc, -1 otherwise.  len is rounded down to 8.
 */
void datagen(void *buf, size_t len, uint32_t *crc);
int datachk(const void *buf, size_t len, const uint32_t *crc);
uint32_t datasum(const void *buf, size_t len);

/* Wake every futex waiter on addr; wait while *addr == val. */
void futex_wake_all(volatile int *addr);
void futex_wait_while(volatile int *addr, int val);

/* Perms ("rw-p") of the mapping containing addr in /proc/self/maps, or -1. */
int vma_perms(const void *addr, char perms[5]);
/* 1 if any mapping overlaps [addr, addr+len), 0 if none, -1 on error. */
int vma_mapped(const void *addr, size_t len);
/*
 * Waits (up to 5 s) until task @pid sleeps in sigwait() for @sig: the
 * kernel unblocks the awaited signal for the wait and shows it so in
 * SigBlk, which the runner compares before the dump and after the
 * restore. 0, or -1 if it never got there.
 */
int wait_in_sigwait(pid_t pid, int sig);

#endif
