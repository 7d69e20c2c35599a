/* SPDX-License-Identifier: MIT */
#ifndef AMBER_LOG_H
#define AMBER_LOG_H

/*
 * Logging. Each .c file defines LOG_PREFIX ("dump: ") before including
 * this header. Levels follow CRIU's -v0..-v4: 0 errors off, 1 errors,
 * 2 warnings, 3 info, 4 debug. Error lines carry "Error" so that test
 * runners can grep a log for failures.
 */
#include <errno.h>
#include <string.h>

enum log_level {
	LOG_MSG = 0, /* always printed (to the log, like the others) */
	LOG_ERROR = 1,
	LOG_WARN = 2,
	LOG_INFO = 3,
	LOG_DEBUG = 4,
};

#ifndef LOG_PREFIX
#define LOG_PREFIX ""
#endif

/* Errors go to stderr as well as to a log file (for the command line). */
#define LOG_ERRORS_TO_STDERR 1u

/* @path NULL or "-": stderr. Closes the log opened before, if any. */
int log_init(const char *path, int level, unsigned flags);
void log_set_level(int level);
int log_get_level(void);
int log_get_fd(void);
/* Moves the log fd to >= @base (restore keeps low fds for the tree). */
int log_move_fd(int base);
void log_fini(void);
void print_on_level(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define pr_msg(fmt, ...)   print_on_level(LOG_MSG, fmt, ##__VA_ARGS__)
#define pr_err(fmt, ...)   print_on_level(LOG_ERROR, "Error (%s:%d): " LOG_PREFIX fmt, __FILE__, __LINE__, ##__VA_ARGS__)
#define pr_warn(fmt, ...)  print_on_level(LOG_WARN, "Warn: " LOG_PREFIX fmt, ##__VA_ARGS__)
#define pr_info(fmt, ...)  print_on_level(LOG_INFO, LOG_PREFIX fmt, ##__VA_ARGS__)
#define pr_debug(fmt, ...) print_on_level(LOG_DEBUG, LOG_PREFIX fmt, ##__VA_ARGS__)
#define pr_perror(fmt, ...) \
	pr_err(fmt ": %s\n", ##__VA_ARGS__, strerror(errno))

#endif
