// SPDX-License-Identifier: GPL-2.0
/* zdtm.c - the zdtm test protocol; see zdtm.h. */
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "zdtm.h"

#define MAX_OPTS 16

volatile int test_stop;

static char pidfile[PATH_MAX], outfile[PATH_MAX], inprogress[PATH_MAX + 16];
static const char *opts[MAX_OPTS];
static int nr_opts;
static pid_t test_pid;
static int ready_fd = -1;
static int result_written;

static void usage(const char *prog)
{
	fprintf(stderr, "usage: %s --pidfile=FILE --outfile=FILE [--opt=VAL]\n",
		prog);
	exit(2);
}

static void abspath(char *dst, const char *src)
{
	char cwd[PATH_MAX];
	int n;

	if (src[0] == '/' || !getcwd(cwd, sizeof(cwd)))
		n = snprintf(dst, PATH_MAX, "%s", src);
	else
		n = snprintf(dst, PATH_MAX, "%.*s/%s", PATH_MAX / 2, cwd, src);
	if (n >= PATH_MAX) {
		fprintf(stderr, "zdtm: path too long: %s\n", src);
		exit(2);
	}
}

static void parse_args(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (!strncmp(argv[i], "--pidfile=", 10))
			abspath(pidfile, argv[i] + 10);
		else if (!strncmp(argv[i], "--outfile=", 10))
			abspath(outfile, argv[i] + 10);
		else if (!strncmp(argv[i], "--", 2) && strchr(argv[i], '=') &&
			 nr_opts < MAX_OPTS)
			opts[nr_opts++] = argv[i] + 2;
		else
			usage(argv[0]);
	}
	if (!pidfile[0] || !outfile[0])
		usage(argv[0]);
	snprintf(inprogress, sizeof(inprogress), "%s.inprogress", outfile);
}

const char *test_opt(const char *name)
{
	size_t len = strlen(name);

	for (int i = 0; i < nr_opts; i++)
		if (!strncmp(opts[i], name, len) && opts[i][len] == '=')
			return opts[i] + len + 1;
	return NULL;
}

static void write_pidfile(pid_t pid)
{
	char tmp[PATH_MAX + 8];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", pidfile);
	f = fopen(tmp, "w");
	if (!f || fprintf(f, "%d\n", pid) < 0 || fclose(f) ||
	    rename(tmp, pidfile)) {
		perror("zdtm: pidfile");
		kill(pid, SIGKILL);
		exit(1);
	}
}

/* The launcher: wait for test_daemon() in the child, publish its pid. */
static void parent_wait(int rfd, pid_t child)
{
	int status;
	char c;

	if (read(rfd, &c, 1) == 1) {
		/*
		 * test_daemon() closes its end right after the write: wait for
		 * that EOF, or the runner's "before" snapshot may still see the
		 * fd and the test close it after the restore.
		 */
		while (read(rfd, &c, 1) > 0)
			;
		write_pidfile(child);
		exit(0);
	}
	if (waitpid(child, &status, 0) == child && WIFEXITED(status) &&
	    WEXITSTATUS(status) == 77)
		exit(77);
	fprintf(stderr, "zdtm: test %d died before test_daemon (status %#x)\n",
		child, status);
	exit(1);
}

/* Bumped by SIGTERM and SIGUSR1: the futex word test_iter_wait() sleeps on. */
static volatile int iter_event;
static volatile int iter_signals; /* SIGUSR1s received */
static int iter_done;		  /* iterations returned by test_iter_wait */

static void sigterm_handler(int sig)
{
	(void)sig;
	test_stop = 1;
	__atomic_add_fetch(&iter_event, 1, __ATOMIC_SEQ_CST);
	futex_wake_all(&test_stop);
	futex_wake_all(&iter_event);
}

static void sigusr1_handler(int sig)
{
	(void)sig;
	__atomic_add_fetch(&iter_signals, 1, __ATOMIC_SEQ_CST);
	__atomic_add_fetch(&iter_event, 1, __ATOMIC_SEQ_CST);
	futex_wake_all(&iter_event);
}

static void close_ready_fd(void)
{
	if (ready_fd >= 0)
		close(ready_fd);
	ready_fd = -1;
}

static void write_line(const char *line)
{
	char buf[4096];
	int n = snprintf(buf, sizeof(buf) - 1, "%s", line);

	if (n > (int)sizeof(buf) - 2)
		n = sizeof(buf) - 2;
	if (n == 0 || buf[n - 1] != '\n')
		buf[n++] = '\n';
	if (write(2, buf, n) != n)
		_exit(3);
}

static void write_result(const char *line)
{
	write_line(line);
	if (!result_written && rename(inprogress, outfile))
		_exit(3);
	result_written = 1;
}

static void check_result(void)
{
	if (getpid() == test_pid && !result_written)
		write_result("FAIL: test exited without a result");
}

void test_init(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = sigterm_handler };
	sigset_t set;
	int p[2], fd;
	pid_t pid;

	parse_args(argc, argv);
	if (pipe2(p, O_CLOEXEC)) {
		perror("zdtm: pipe");
		exit(1);
	}
	pid = fork();
	if (pid < 0) {
		perror("zdtm: fork");
		exit(1);
	}
	if (pid > 0) {
		close(p[1]);
		parent_wait(p[0], pid);
	}
	close(p[0]);
	ready_fd = p[1];
	test_pid = getpid();
	pthread_atfork(NULL, NULL, close_ready_fd);
	setsid();
	fd = open(inprogress, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
	if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
		exit(1);
	if (fd > 2)
		close(fd);
	setvbuf(stdout, NULL, _IONBF, 0);
	atexit(check_result);
	sigemptyset(&sa.sa_mask);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	if (sigaction(SIGTERM, &sa, NULL) ||
	    sigprocmask(SIG_UNBLOCK, &set, NULL))
		exit(1);
}

void test_daemon(void)
{
	if (write(ready_fd, "R", 1) != 1)
		exit(1);
	close_ready_fd();
}

void test_waitsig(void)
{
	futex_wait_while(&test_stop, 0);
}

void test_iter_init(void)
{
	struct sigaction sa = { .sa_handler = sigusr1_handler };
	sigset_t set;

	sigemptyset(&sa.sa_mask);
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	if (sigaction(SIGUSR1, &sa, NULL) ||
	    sigprocmask(SIG_UNBLOCK, &set, NULL)) {
		fail("test_iter_init: sigaction: %s", strerror(errno));
		exit(1);
	}
}

static void iter_name(char *buf, size_t len, int k)
{
	snprintf(buf, len, "iter-%d", k);
}

int test_iter_wait(void)
{
	char name[32];
	int ev;

	for (;;) {
		ev = iter_event;
		if (iter_signals > iter_done)
			return ++iter_done;
		if (test_stop)
			break;
		futex_wait_while(&iter_event, ev);
	}
	iter_name(name, sizeof(name), iter_done + 1);
	if (access(name, F_OK) == 0) {
		fail("%s exists but only %d iterations are in memory", name,
		     iter_done);
		exit(1);
	}
	return 0;
}

/*
 * The runner captures the fd table as soon as iter-K exists: make it
 * appear by rename() once closed, or the capture may see its fd open.
 */
void test_iter_ack(int k)
{
	char name[32], tmp[40];
	int fd;

	iter_name(name, sizeof(name), k);
	snprintf(tmp, sizeof(tmp), ".%s.tmp", name);
	fd = open(tmp, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0 || close(fd) || rename(tmp, name)) {
		fail("test_iter_ack: %s: %s", name, strerror(errno));
		exit(1);
	}
}

void test_msg(const char *fmt, ...)
{
	char buf[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	write_line(buf);
}

void pass(void)
{
	write_result("PASS");
}

void fail(const char *fmt, ...)
{
	char buf[4096];
	va_list ap;
	int n;

	n = snprintf(buf, sizeof(buf), "FAIL: ");
	va_start(ap, fmt);
	vsnprintf(buf + n, sizeof(buf) - n, fmt, ap);
	va_end(ap);
	write_result(buf);
}

void test_skip(const char *fmt, ...)
{
	char buf[4096];
	va_list ap;
	int n;

	n = snprintf(buf, sizeof(buf), "SKIP: ");
	va_start(ap, fmt);
	vsnprintf(buf + n, sizeof(buf) - n, fmt, ap);
	va_end(ap);
	write_result(buf);
	exit(77);
}
