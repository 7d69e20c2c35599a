// SPDX-License-Identifier: MIT
#define LOG_PREFIX "util: "
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "base/log.h"
#include "base/util.h"

void *xzalloc(size_t size)
{
	void *p = calloc(1, size ? size : 1);

	if (!p)
		pr_err("out of memory (%zu bytes)\n", size);
	return p;
}

void *xrealloc_array(void *p, size_t nmemb, size_t size)
{
	void *n;

	if (size && nmemb > SIZE_MAX / size)
		return NULL;
	n = realloc(p, (nmemb && size) ? nmemb * size : 1);
	if (!n)
		pr_err("out of memory (%zu x %zu)\n", nmemb, size);
	return n;
}

int read_full(int fd, void *buf, size_t len)
{
	char *p = buf;

	while (len) {
		ssize_t n = read(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		p += n;
		len -= n;
	}
	return 0;
}

int pread_full(int fd, void *buf, size_t len, off_t off)
{
	char *p = buf;

	while (len) {
		ssize_t n = pread(fd, p, len, off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		p += n;
		off += n;
		len -= n;
	}
	return 0;
}

int write_full(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= n;
	}
	return 0;
}

char *read_file_at(int dirfd, const char *path, size_t *len)
{
	int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return NULL;
	return read_fd_all(fd, len);
}

char *read_fd_all(int fd, size_t *len)
{
	size_t cap = 4096, used = 0;
	char *buf;

	buf = malloc(cap);
	while (buf) {
		ssize_t n = read(fd, buf + used, cap - used - 1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			free(buf);
			buf = NULL;
			break;
		}
		if (n == 0)
			break;
		used += n;
		if (cap - used < 2) {
			char *nb = realloc(buf, cap * 2);

			if (!nb) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = nb;
			cap *= 2;
		}
	}
	close(fd);
	if (!buf)
		return NULL;
	buf[used] = 0;
	if (len)
		*len = used;
	return buf;
}

char *read_proc(pid_t pid, const char *name, size_t *len)
{
	char path[64];

	/* 0: the caller, whatever pid namespace the mounted /proc is for */
	if (pid)
		snprintf(path, sizeof(path), "/proc/%d/%s", pid, name);
	else
		snprintf(path, sizeof(path), "/proc/self/%s", name);
	return read_file_at(AT_FDCWD, path, len);
}

bool path_no_dots(const char *p)
{
	const char *c = p;

	if (*p != '/')
		return false;
	while (*c) {
		size_t n;

		while (*c == '/')
			c++;
		n = strcspn(c, "/");
		if ((n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
			return false;
		c += n;
	}
	return true;
}

int mkdir_p(const char *path, mode_t mode)
{
	char tmp[4096];
	size_t l = strlen(path);

	if (l >= sizeof(tmp))
		return -ENAMETOOLONG;
	memcpy(tmp, path, l + 1);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(tmp, mode) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, mode) && errno != EEXIST)
		return -errno;
	return 0;
}

struct arena_chunk {
	struct arena_chunk *next;
	max_align_t data[];
};

void *arena_alloc(struct arena *a, size_t size)
{
	struct arena_chunk *c = calloc(1, sizeof(*c) + (size ? size : 1));

	if (!c) {
		pr_err("out of memory (%zu bytes)\n", size);
		return NULL;
	}
	c->next = a->head;
	a->head = c;
	return c->data;
}

void *arena_memdup(struct arena *a, const void *p, size_t size)
{
	void *n = arena_alloc(a, size);

	if (n)
		memcpy(n, p, size);
	return n;
}

char *arena_strdup(struct arena *a, const char *s)
{
	return arena_memdup(a, s, strlen(s) + 1);
}

void arena_free(struct arena *a)
{
	while (a->head) {
		struct arena_chunk *c = a->head;

		a->head = c->next;
		free(c);
	}
}

const char *ext_mount_lookup(const struct ext_mount *map, size_t nr, const char *key)
{
	for (size_t i = 0; i < nr; i++)
		if (map[i].key && map[i].val && !strcmp(map[i].key, key))
			return map[i].val;
	return NULL;
}
