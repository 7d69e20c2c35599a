// SPDX-License-Identifier: MIT
/*
 * The log is process-wide state by nature (one stream per amber run), so it
 * is the one place that keeps file-scope variables.
 */
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"

static int log_fd = STDERR_FILENO;
static int log_level = LOG_WARN;
static bool log_errors_to_stderr;
static struct timespec log_start;

int log_init(const char *path, int level, unsigned flags)
{
	int fd = STDERR_FILENO;

	if (path && strcmp(path, "-")) {
		fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		if (fd < 0)
			return -errno; /* the caller says so: there is no log yet */
	}
	log_fini();
	log_fd = fd;
	log_level = level;
	log_errors_to_stderr = flags & LOG_ERRORS_TO_STDERR;
	clock_gettime(CLOCK_MONOTONIC, &log_start);
	return 0;
}

void log_set_level(int level)
{
	log_level = level;
}

int log_get_level(void)
{
	return log_level;
}

int log_get_fd(void)
{
	return log_fd;
}

int log_move_fd(int base)
{
	int fd;

	if (log_fd == STDERR_FILENO)
		return 0;
	fd = fcntl(log_fd, F_DUPFD_CLOEXEC, base);
	if (fd < 0)
		return -errno;
	close(log_fd);
	log_fd = fd;
	return 0;
}

void log_fini(void)
{
	if (log_fd != STDERR_FILENO)
		close(log_fd);
	log_fd = STDERR_FILENO;
}

void print_on_level(int level, const char *fmt, ...)
{
	char buf[2048];
	struct timespec now;
	va_list args;
	int off = 0, n, saved = errno;

	if (level > log_level && level != LOG_MSG)
		return;
	if (level != LOG_MSG) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		long us = (now.tv_sec - log_start.tv_sec) * 1000000L +
			  (now.tv_nsec - log_start.tv_nsec) / 1000;
		off = snprintf(buf, sizeof(buf), "(%02ld.%06ld) %5d: ", us / 1000000, us % 1000000,
			       (int)getpid());
	}
	va_start(args, fmt);
	n = vsnprintf(buf + off, sizeof(buf) - off, fmt, args);
	va_end(args);
	if (n < 0)
		n = 0;
	n += off;
	if (n > (int)sizeof(buf) - 1)
		n = sizeof(buf) - 1;
	if (write(log_fd, buf, n) < 0) {
	}
	/* The CLI has errors reach the terminal too, so a user sees why. */
	if (level == LOG_ERROR && log_errors_to_stderr && log_fd != STDERR_FILENO &&
	    write(STDERR_FILENO, buf + off, n - off) < 0) {
	}
	errno = saved;
}
