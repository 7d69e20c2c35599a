// SPDX-License-Identifier: MIT
/* The GET client of the page server (pageserver/client.h). */
#define LOG_PREFIX "ps-client: "
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "image/magic.h"
#include "base/log.h"
#include "pageserver/conn.h"
#include "pageserver/client.h"
#include "base/util.h"

struct ps_client {
	struct ps_conn c;
	bool broken; /* out of step with the server: only close */
};

struct ps_client *ps_client_connect(const struct ps_client_opts *o)
{
	struct ps_client_opts opts = {0};
	struct ps_sec sec = {0};
	struct ps_conn conn;
	struct ps_client *c;
	int ret;

	/* Older callers pass a shorter struct; newer fields stay zero. */
	if (!o || o->size < offsetof(struct ps_client_opts, tls) || o->size > sizeof(opts)) {
		errno = EINVAL;
		return NULL;
	}
	memcpy(&opts, o, o->size);
	sec.token_file = opts.token_file;
	sec.tls = opts.tls;
	sec.tls_cacert = opts.tls_cacert;
	sec.tls_cert = opts.tls_cert;
	sec.tls_key = opts.tls_key;
	sec.tls_no_cn_verify = opts.tls_no_cn_verify;
	ret = ps_connect(opts.address, opts.port, &conn);
	if (!ret) {
		ret = ps_conn_client_secure(&conn, &sec, opts.address);
		if (!ret)
			ret = ps_conn_set_timeout(&conn, 0);
		if (ret)
			ps_conn_close(&conn);
	}
	if (ret) {
		errno = -ret;
		return NULL;
	}
	c = ps_client_adopt(&conn);
	if (!c) {
		ps_conn_close(&conn);
		errno = ENOMEM;
	}
	return c;
}

struct ps_client *ps_client_adopt(struct ps_conn *conn)
{
	struct ps_client *c = xzalloc(sizeof(*c));

	if (!c) {
		errno = ENOMEM;
		return NULL;
	}
	c->c = *conn;
	return c;
}

/* What a GET names: a task or, with PS_GET_SHMEM, a shmem object. */
struct get_target {
	uint32_t flags;
	uint64_t id;
};

static const char *target_kind(const struct get_target *t)
{
	return t->flags & PS_GET_SHMEM ? "shmem" : "pid";
}

/* One GET round trip: *got pages at @vaddr (0: a hole there). */
static int get_once(struct ps_client *c, const struct get_target *t, uint64_t vaddr, uint64_t nr,
		    uint8_t *buf, uint64_t *got)
{
	struct ps_iov req = {
	    .cmd = PS_IOV_GET, .flags = t->flags, .nr_pages = nr, .vaddr = vaddr, .dst_id = t->id};
	struct ps_iov rep;
	int ret = ps_send_iov(&c->c, &req);

	if (!ret)
		ret = ps_recv_iov(&c->c, &rep);
	if (ret)
		return ret == 1 ? -ECONNRESET : ret;
	if (rep.cmd == PS_IOV_ERR) {
		if (!rep.dst_id || rep.dst_id >= 4096 || rep.vaddr != vaddr)
			return -EPROTO;
		return -(int)rep.dst_id;
	}
	if (rep.cmd != PS_IOV_ADD_F || rep.vaddr != vaddr || rep.nr_pages > nr ||
	    (rep.nr_pages && !(rep.flags & PE_PRESENT))) {
		pr_err("page server sent a reply that does not match GET %s %llu %#llx\n",
		       target_kind(t), (unsigned long long)t->id, (unsigned long long)vaddr);
		return -EPROTO;
	}
	*got = rep.nr_pages;
	return rep.nr_pages ? ps_conn_recv(&c->c, buf, rep.nr_pages * PAGE_SIZE) : 0;
}

/* As many GETs as the server's partial replies take to fill @buf. */
static int get_pages(struct ps_client *c, const struct get_target *t, uint64_t vaddr,
		     unsigned nr_pages, void *buf)
{
	uint8_t *p = buf;
	bool hole = false;

	if (c->broken)
		return -EPROTO;
	/* A shmem id may be 0: a SysV segment's. */
	if ((!t->id && !(t->flags & PS_GET_SHMEM)) || (vaddr & (PAGE_SIZE - 1)) || !nr_pages)
		return -EINVAL;
	while (nr_pages) {
		uint64_t got = 0;
		int ret = get_once(c, t, vaddr, nr_pages, p, &got);

		if (ret) {
			/* An error reply leaves the stream in step; anything else does not. */
			if (ret == -EPROTO || ret == -ECONNRESET || ret == -EIO ||
			    ret == -ETIMEDOUT)
				c->broken = true;
			return ret;
		}
		if (!got) {
			memset(p, 0, PAGE_SIZE);
			hole = true;
			got = 1;
		}
		p += got * PAGE_SIZE;
		vaddr += got * PAGE_SIZE;
		nr_pages -= got;
	}
	return hole ? -ENOENT : 0;
}

int ps_client_get_pages(struct ps_client *c, int pid, uint64_t vaddr, unsigned nr_pages, void *buf)
{
	/* No pid is 0 or negative: id 0 is refused as a bad request. */
	struct get_target t = {.id = pid > 0 ? (uint64_t)pid : 0};

	return get_pages(c, &t, vaddr, nr_pages, buf);
}

int ps_client_get_shmem_pages(struct ps_client *c, uint64_t shmid, uint64_t off, unsigned nr_pages,
			      void *buf)
{
	struct get_target t = {.flags = PS_GET_SHMEM, .id = shmid};

	return get_pages(c, &t, off, nr_pages, buf);
}

void ps_client_close(struct ps_client *c)
{
	struct ps_iov req = {.cmd = PS_IOV_CLOSE};
	int32_t status;

	if (!c)
		return;
	if (!c->broken && !ps_send_iov(&c->c, &req))
		ps_conn_recv(&c->c, &status, sizeof(status));
	ps_conn_close(&c->c);
	free(c);
}

void ps_client_hangup(struct ps_client *c)
{
	if (!c)
		return;
	ps_conn_close(&c->c);
	free(c);
}
