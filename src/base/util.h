/* SPDX-License-Identifier: MIT */
#ifndef AMBER_UTIL_H
#define AMBER_UTIL_H

/*
 * Small helpers shared by every subsystem: cleanup attributes, full
 * reads/writes that survive short counts, and /proc file slurping.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "base/csum.h"

/* In a spin-wait loop: tell the CPU (x86-64 only, like amber). */
static inline void cpu_relax(void)
{
	__builtin_ia32_pause();
}

/* CLOCK_MONOTONIC in nanoseconds, for durations. */
static inline uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

#ifndef ARRAY_SIZE
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#endif
#ifndef PAGE_SIZE
#define PAGE_SIZE 4096UL
#endif
#ifndef PAGE_SHIFT
#define PAGE_SHIFT 12
#endif
#define PAGE_ALIGN(x) (((x) + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1))
#ifndef min
#define min(a, b) ((a) < (b) ? (a) : (b))
#define max(a, b) ((a) > (b) ? (a) : (b))
#endif

static inline void freep(void *p)
{
	free(*(void **)p);
}

static inline void closep(int *fd)
{
	if (*fd >= 0)
		close(*fd);
}

#define cleanup_free  __attribute__((cleanup(freep)))
#define cleanup_close __attribute__((cleanup(closep)))

/* Returns a pointer and forgets it, so cleanup does not free it. */
#define steal_ptr(p)                    \
	({                              \
		__typeof__(p) __p = (p); \
		(p) = NULL;             \
		__p;                    \
	})
#define steal_fd(fd)           \
	({                     \
		int __fd = (fd); \
		(fd) = -1;     \
		__fd;          \
	})

void *xzalloc(size_t size);
void *xrealloc_array(void *p, size_t nmemb, size_t size);

/*
 * Room for one more element in the malloc'd array @arr, @nr used of @cap:
 * when it is full, @cap doubles (@first the first time) and @arr moves.
 * 0, or -ENOMEM with @arr and @cap as they were. @arr, @nr and @cap are
 * lvalues, read more than once.
 */
#define array_make_room(arr, nr, cap, first)                                      \
	({                                                                        \
		int __ret = 0;                                                    \
		if ((nr) == (cap)) {                                              \
			__typeof__(cap) __cap = (cap) ? (cap) * 2 : (first);      \
			__typeof__(arr) __arr = xrealloc_array((arr), __cap,      \
							       sizeof(*(arr)));   \
			if (__arr) {                                              \
				(arr) = __arr;                                    \
				(cap) = __cap;                                    \
			} else {                                                  \
				__ret = -ENOMEM;                                  \
			}                                                         \
		}                                                                 \
		__ret;                                                            \
	})

/* 0 or -errno; a short read of a regular file is -EIO. */
int read_full(int fd, void *buf, size_t len);
int write_full(int fd, const void *buf, size_t len);
int pread_full(int fd, void *buf, size_t len, off_t off);

/* Reads a whole (small, /proc) file into a NUL-terminated malloc'ed buffer. */
char *read_file_at(int dirfd, const char *path, size_t *len);
/* Read all of @fd (NUL-terminated), then close it; NULL with errno on failure. */
char *read_fd_all(int fd, size_t *len);
/* /proc/PID/NAME, or /proc/self/NAME for pid 0. */
char *read_proc(pid_t pid, const char *name, size_t *len);


int mkdir_p(const char *path, mode_t mode);
/* Absolute, without a "." or ".." component (mount paths, kexec-mounts). */
bool path_no_dots(const char *p);

/* An external mount's key and value (amber.h's amber_ext_mount). */
struct ext_mount {
	const char *key;
	const char *val;
};
/* The value for @key in @map, or NULL. */
const char *ext_mount_lookup(const struct ext_mount *map, size_t nr, const char *key);


/*
 * The next line of the text at *@rest, terminated in place, or NULL at
 * its end. sscanf() takes the length of all its input first, so a loop
 * that gives it each line of a large buffer unterminated is quadratic.
 */
static inline char *next_line(char **rest)
{
	char *line = *rest, *nl;

	if (!line || !*line)
		return NULL;
	nl = strchr(line, '\n');
	if (nl)
		*nl++ = '\0';
	*rest = nl;
	return line;
}

static inline bool is_err_val(long v)
{
	return v < 0 && v > -4096;
}



/*
 * An arena for building protobuf messages: everything one dump or one
 * restore allocates for its images is freed at once by arena_free().
 */
struct arena {
	struct arena_chunk *head;
};

void *arena_alloc(struct arena *a, size_t size);
void *arena_memdup(struct arena *a, const void *p, size_t size);
char *arena_strdup(struct arena *a, const char *s);
void arena_free(struct arena *a);
#define arena_new(a, type) ((type *)arena_alloc((a), sizeof(type)))
#define arena_array(a, type, n) ((type *)arena_alloc((a), sizeof(type) * (n)))

#endif
