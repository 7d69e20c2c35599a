// SPDX-License-Identifier: MIT
/*
 * The remote page source (post-copy): one authenticated connection to
 * `amber page-server --lazy-pages`, one GET in flight. Bytes land in a
 * buffer owned here, grown up to the largest entry whose checksum the
 * daemon checks in one piece.
 */
#define LOG_PREFIX "lazy-src: "
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lazy/source.h"
#include "base/log.h"
#include "pageserver/client.h"
#include "base/util.h"

/* As the server: entries beyond this are not verified in one read. */
#define REMOTE_MAX_GET (64ull << 20)

struct remote_source {
	struct lazy_source s;
	struct ps_client *c;
	uint8_t *buf;
	size_t cap;
};

static int grow(struct remote_source *rs, size_t len)
{
	uint8_t *n;

	if (len <= rs->cap)
		return 0;
	if (len > REMOTE_MAX_GET) {
		pr_err("a read of %zu bytes from the page server: entry too large\n", len);
		return -EFBIG;
	}
	n = realloc(rs->buf, len);
	if (!n)
		return -ENOMEM;
	rs->buf = n;
	rs->cap = len;
	return 0;
}

/*
 * The server serves the same dump these images come from: a hole where the
 * pagemap says data, or an unknown task, means it does not.
 */
static int result(int ret, const char *what, unsigned long long id, uint64_t addr)
{
	switch (ret) {
	case 0:
		return 0;
	case -ENOENT:
	case -ESRCH:
		pr_err("page server has no %s %llu page at %#llx that these images list: it "
		       "serves another dump\n", what, id, (unsigned long long)addr);
		return -EBADMSG;
	case -EBADMSG:
		pr_err("page server found %s %llu's pages at %#llx corrupt\n", what, id,
		       (unsigned long long)addr);
		return -EBADMSG;
	case -EINVAL:
	case -ERANGE:
	case -E2BIG:
	case -ENOMEM:
		pr_err("page server refused GET %s %llu %#llx: %s\n", what, id,
		       (unsigned long long)addr, strerror(-ret));
		return ret;
	}
	pr_err("page server connection lost: %s\n", strerror(-ret));
	return -ENOTCONN;
}

/* One GET of @len bytes at @addr of a task (@shmem false) or a shmem object. */
static int remote_fetch(struct lazy_source *s, bool shmem, uint64_t id, uint64_t addr,
			size_t len, const void **data)
{
	struct remote_source *rs = (struct remote_source *)s;
	int ret = grow(rs, len);

	if (ret)
		return ret;
	if (shmem)
		ret = ps_client_get_shmem_pages(rs->c, id, addr, len / PAGE_SIZE, rs->buf);
	else
		ret = ps_client_get_pages(rs->c, (int)id, addr, len / PAGE_SIZE, rs->buf);
	*data = rs->buf;
	return result(ret, shmem ? "shared memory" : "task", id, addr);
}

static int remote_get(struct lazy_source *s, pid_t pid, int layer, uint64_t vaddr, uint64_t off,
		      size_t len, const void **data)
{
	if (layer)
		return -EINVAL; /* a page server has no parent images (refused at load) */
	return remote_fetch(s, false, pid, vaddr, len, data);
}

static int remote_get_shmem(struct lazy_source *s, uint64_t shmid, uint64_t off, size_t len,
			    const void **data)
{
	return remote_fetch(s, true, shmid, off, len, data);
}

static void remote_close(struct lazy_source *s, bool done)
{
	struct remote_source *rs = (struct remote_source *)s;

	/*
	 * CLOSE ends the server's session: post-copy is over. Short of that,
	 * only hang up: the server keeps listening for a resumed daemon.
	 */
	if (done)
		ps_client_close(rs->c);
	else
		ps_client_hangup(rs->c);
	free(rs->buf);
	free(rs);
}

static const struct lazy_source_ops remote_ops = {
	.get = remote_get,
	.get_shmem = remote_get_shmem,
	.close = remote_close,
};

struct lazy_source *lazy_source_remote(const struct ps_client_opts *o)
{
	struct remote_source *rs = xzalloc(sizeof(*rs));

	if (!rs)
		return NULL;
	rs->s.ops = &remote_ops;
	rs->c = ps_client_connect(o);
	if (!rs->c) {
		int err = errno;

		pr_perror("can't connect to the page server at %s:%d", o->address, o->port);
		free(rs);
		errno = err;
		return NULL;
	}
	pr_info("pages from the page server at %s:%d\n", o->address, o->port);
	return &rs->s;
}
