// SPDX-License-Identifier: GPL-2.0
/*
 * Nested pid namespaces below the tree's root's: the test unshares a pid
 * namespace (its pid_for_children) and forks its init A (pid 1 there);
 * A forks B (pid 2), and B does the same again one level deeper: its
 * init C. Each task checks, after restore, its getpid(), getppid(),
 * process group and session as it sees them, its NSpid line (its pid at
 * every level, as the host's /proc shows it) and a value in its memory;
 * the test and B check that their pid_for_children is still the inner
 * namespace. C has a second thread, which checks its gettid() and its
 * NSpid (its tid at every level) the same way.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "zdtm.h"

struct self {
	pid_t pid, ppid, pgid, sid;
	char nspid[128];
	int children_ns; /* pid_for_children: 0 its own namespace, 1 another, 2 @init's */
	unsigned long marker;
};

static volatile sig_atomic_t got_term;
static volatile unsigned long marker; /* a value in memory, per task */

static void on_term(int sig __attribute__((unused)))
{
	got_term = 1;
}

static int read_nspid_of(const char *path, char *buf, size_t len)
{
	char line[256];
	FILE *f = fopen(path, "r");

	if (!f)
		return -1;
	buf[0] = 0;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "NSpid:", 6))
			snprintf(buf, len, "%.100s", line + 6);
	fclose(f);
	return buf[0] ? 0 : -1;
}

static int read_nspid(char *buf, size_t len)
{
	return read_nspid_of("/proc/self/status", buf, len);
}

/* C's second thread: its tid and NSpid, before and after. */
static volatile int thread_go, thread_ready;
static volatile int thread_result = -1;

static void *second_thread(void *arg)
{
	char then[128], now[128];
	pid_t tid = syscall(SYS_gettid);

	read_nspid_of("/proc/thread-self/status", then, sizeof(then));
	thread_ready = 1;
	futex_wake_all(&thread_ready);
	futex_wait_while(&thread_go, 0);
	read_nspid_of("/proc/thread-self/status", now, sizeof(now));
	if (syscall(SYS_gettid) != tid)
		thread_result = 30;
	else if (strcmp(then, now))
		thread_result = 31;
	else
		thread_result = 0;
	if (thread_result)
		test_msg("C's thread: tid %ld, was %d; NSpid %s, was %s", (long)syscall(SYS_gettid),
			 tid, now, then);
	return arg;
}

static ino_t ns_ino(const char *path)
{
	struct stat st;

	return stat(path, &st) ? 0 : st.st_ino;
}

/*
 * Namespace inodes are new after a restore: what is kept is whether the
 * children's namespace is one's own, another, or that of @init (a pid in
 * one's own namespace, as the host's /proc sees it: the test's only).
 */
static void snap(struct self *s, pid_t init)
{
	ino_t children = ns_ino("/proc/self/ns/pid_for_children");
	char path[64];

	s->pid = getpid();
	s->ppid = getppid();
	s->pgid = getpgid(0);
	s->sid = getsid(0);
	s->marker = marker;
	read_nspid(s->nspid, sizeof(s->nspid));
	snprintf(path, sizeof(path), "/proc/%d/ns/pid", init);
	s->children_ns = children == ns_ino("/proc/self/ns/pid") ? 0 :
			 init && children == ns_ino(path) ? 2 : 1;
}

/* 0 if @now is @then, else a code naming the first difference. */
static int compare(const char *who, const struct self *then, const struct self *now)
{
	if (now->pid != then->pid)
		return test_msg("%s: getpid %d, was %d\n", who, now->pid, then->pid), 10;
	/* The test's parent is the runner's, gone: amber after a restore. */
	if (now->ppid != then->ppid && strcmp(who, "test"))
		return test_msg("%s: getppid %d, was %d\n", who, now->ppid, then->ppid), 11;
	if (now->pgid != then->pgid || now->sid != then->sid)
		return test_msg("%s: pgid/sid %d/%d, were %d/%d\n", who, now->pgid, now->sid,
				then->pgid, then->sid), 12;
	if (strcmp(now->nspid, then->nspid))
		return test_msg("%s: NSpid %s, was %s", who, now->nspid, then->nspid), 13;
	if (now->marker != then->marker)
		return test_msg("%s: marker %#lx, was %#lx\n", who, now->marker, then->marker), 14;
	if (now->children_ns != then->children_ns)
		return test_msg("%s: pid_for_children %d, was %d (0 own, 1 other, 2 its init's)\n",
				who, now->children_ns, then->children_ns), 15;
	return 0;
}

/* Waits for SIGTERM, checks itself, then stops its child and takes its status. */
static int __attribute__((noreturn)) live(const char *who, int ready_fd, pid_t child)
{
	struct sigaction sa = { .sa_handler = on_term };
	struct self then, now;
	sigset_t none;
	int status, ret;

	/* An init gets SIGTERM from above only with a handler. */
	sigaction(SIGTERM, &sa, NULL);
	snap(&then, 0);
	if (write(ready_fd, "x", 1) != 1)
		_exit(2);
	close(ready_fd);
	sigemptyset(&none);
	while (!got_term)
		sigsuspend(&none);
	snap(&now, 0);
	ret = compare(who, &then, &now);
	if (thread_ready) {
		thread_go = 1;
		futex_wake_all(&thread_go);
		while (thread_result < 0)
			usleep(1000);
		if (!ret)
			ret = thread_result;
	}
	if (child > 0) {
		kill(child, SIGTERM);
		if (waitpid(child, &status, 0) != child)
			_exit(20);
		if (!ret && (!WIFEXITED(status) || WEXITSTATUS(status)))
			ret = WIFEXITED(status) ? WEXITSTATUS(status) : 21;
	}
	_exit(ret);
}

/* unshare(CLONE_NEWPID) + fork: the child is init of a new namespace. */
static pid_t fork_init(void)
{
	if (unshare(CLONE_NEWPID))
		return -1;
	return fork();
}

/* In B: one level deeper, C. */
static void __attribute__((noreturn)) run_b(int ready_fd)
{
	int pfd[2];
	pid_t c;
	char x;

	if (pipe(pfd))
		_exit(3);
	c = fork_init();
	if (c < 0)
		_exit(4);
	if (c == 0) {
		close(pfd[0]);
		close(ready_fd); /* A's: A waits for B's EOF on it */
		marker = 0xc0ffee03;
		if (getpid() != 1)
			_exit(5);
		{
			pthread_t th;

			if (pthread_create(&th, NULL, second_thread, NULL))
				_exit(8);
			futex_wait_while(&thread_ready, 0);
		}
		live("C", pfd[1], 0);
	}
	close(pfd[1]);
	if (read(pfd[0], &x, 1) != 1 || read(pfd[0], &x, 1) != 0)
		_exit(6);
	close(pfd[0]);
	marker = 0xc0ffee02;
	live("B", ready_fd, c);
}

/* In A, init of the first inner namespace: B. */
static void __attribute__((noreturn)) run_a(int ready_fd)
{
	int pfd[2];
	pid_t b;
	char x;

	if (getpid() != 1)
		_exit(7);
	if (pipe(pfd))
		_exit(3);
	b = fork();
	if (b < 0)
		_exit(4);
	if (b == 0) {
		close(pfd[0]);
		close(ready_fd); /* the test's: it waits for A's EOF on it */
		run_b(pfd[1]);
	}
	close(pfd[1]);
	if (read(pfd[0], &x, 1) != 1 || read(pfd[0], &x, 1) != 0)
		_exit(6);
	close(pfd[0]);
	marker = 0xc0ffee01;
	live("A", ready_fd, b);
}

int main(int argc, char **argv)
{
	struct self then, now;
	int pfd[2], status, ret;
	pid_t a;
	char x;

	test_init(argc, argv);
	if (pipe(pfd))
		return fail_errno("pipe"), 1;
	a = fork_init();
	if (a < 0)
		return fail_errno("unshare(CLONE_NEWPID) + fork"), 1;
	if (a == 0) {
		close(pfd[0]);
		run_a(pfd[1]);
	}
	close(pfd[1]);
	/*
	 * The byte, then EOF: each task closes its end of the pipe after the
	 * write, and waits for the same from its child before writing, so
	 * every fd table below is final once the EOF comes.
	 */
	if (read(pfd[0], &x, 1) != 1 || read(pfd[0], &x, 1) != 0)
		return fail("the inner tasks did not start"), 1;
	close(pfd[0]);
	marker = 0xc0ffee00;
	snap(&then, a);
	if (then.children_ns != 2)
		return fail("pid_for_children is not A's namespace before the dump"), 1;
	test_daemon();
	test_waitsig();

	snap(&now, a);
	ret = compare("test", &then, &now);
	kill(a, SIGTERM);
	if (waitpid(a, &status, 0) != a)
		return fail_errno("waitpid A"), 1;
	if (ret)
		return fail("the test's own pids or memory changed (%d)", ret), 1;
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		return fail("an inner task failed: status %#x (exit code %d)", status,
			    WIFEXITED(status) ? WEXITSTATUS(status) : -1), 1;
	pass();
	return 0;
}
