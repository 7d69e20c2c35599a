// SPDX-License-Identifier: MIT
/*
 * The page server's listener and its receive mode (pageserver/server.h): pages a
 * dump streams in are written to the image directory through the local
 * page-transfer backend. Every header is checked before anything is
 * written; a bad one ends the session, never the server.
 */
#define LOG_PREFIX "page-server: "
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image/image.h"
#include "image/magic.h"
#include "base/log.h"
#include "mem/pagemap_chain.h"
#include "pageserver/gate.h"
#include "pageserver/server.h"
#include "base/util.h"
#include "mem/xfer.h"

#define DEFAULT_TIMEOUT 600
/* Like CRIU's page server, so its pages files never clash with the dumper's. */
#define PS_PAGES_ID_BASE 0x10000
#define PID_MAX_LIMIT	 (1 << 22)

struct recv_session {
	struct ps_conn *c;
	struct xfer_target *xt;
	int parent_dirfd; /* DIR/parent, -1: none (not an incremental dump) */
	struct xfer *cur;
	uint64_t cur_dst;
	uint64_t cur_end; /* runs of one pagemap must ascend */
	bool cur_has_parent;
	struct pm_layer cur_parent; /* the parent's pagemap of the current one */
	uint64_t *done;	  /* pagemaps already written this session */
	int nr_done;
};

/* 0 if @dst_id names a pagemap the server may write. */
static int check_dst(struct ps_conn *c, uint64_t dst_id)
{
	uint64_t id;
	int type = ps_decode_dst(dst_id, &id);

	if (type < 0) {
		pr_err("%s: unknown pagemap type in dst_id %#llx\n", c->peer,
		       (unsigned long long)dst_id);
		return -EINVAL;
	}
	if (type == PS_TYPE_PID && (id == 0 || id >= PID_MAX_LIMIT)) {
		pr_err("%s: dst_id %#llx names pid %llu: out of range\n", c->peer,
		       (unsigned long long)dst_id, (unsigned long long)id);
		return -ERANGE;
	}
	return 0;
}

static int pagemap_type(uint64_t dst_id, uint64_t *id)
{
	return ps_decode_dst(dst_id, id) == PS_TYPE_PID ? IMG_PAGEMAP : IMG_SHMEM_PAGEMAP;
}

/* Whether the parent image has the pagemap @dst_id names (checked valid). */
static bool has_parent(const struct recv_session *s, uint64_t dst_id)
{
	char name[64];
	uint64_t id;
	int type = pagemap_type(dst_id, &id);

	if (s->parent_dirfd < 0)
		return false;
	img_name(type, id, name, sizeof(name));
	return !faccessat(s->parent_dirfd, name, F_OK, 0);
}

/*
 * The parent's pagemap of @dst_id, so that each PE_PARENT run can be
 * checked against it; one that does not load counts as no parent.
 */
static void load_parent(struct recv_session *s, uint64_t dst_id)
{
	static const struct pm_pages_src no_pages = { .none = true };
	uint64_t id;
	int type = pagemap_type(dst_id, &id);

	bool there = has_parent(s, dst_id);

	pm_layer_free(&s->cur_parent);
	s->cur_has_parent =
	    there && !pm_layer_load(&s->cur_parent, s->parent_dirfd, type, id, &no_pages);
	if (there && !s->cur_has_parent)
		pr_warn("%s: the parent's pagemap of dst_id %#llx is unusable: answering "
			"that there is no parent\n", s->c->peer, (unsigned long long)dst_id);
}

static int recv_open(struct recv_session *s, uint64_t dst_id)
{
	uint64_t id;
	int type, ret = check_dst(s->c, dst_id);

	if (ret)
		return ret;
	/* Reopening would truncate what the client sent before: refuse. */
	for (int i = 0; i < s->nr_done; i++) {
		if (s->done[i] == dst_id) {
			pr_err("%s: dst_id %#llx opened a second time\n", s->c->peer,
			       (unsigned long long)dst_id);
			return -EEXIST;
		}
	}
	if (s->cur) {
		uint64_t *n = xrealloc_array(s->done, s->nr_done + 1, sizeof(*n));

		if (!n)
			return -ENOMEM;
		s->done = n;
		n[s->nr_done++] = s->cur_dst;
	}
	ret = xfer_close(steal_ptr(s->cur));
	if (ret)
		return ret;
	type = ps_decode_dst(dst_id, &id);
	ret = xfer_open(s->xt, type == PS_TYPE_PID ? XFER_TASK : XFER_SHMEM, id, &s->cur);
	if (ret) {
		pr_err("%s: can't open pagemap for dst_id %#llx: %s\n", s->c->peer,
		       (unsigned long long)dst_id, strerror(-ret));
		return ret;
	}
	pr_info("%s: receiving %s %llu\n", s->c->peer, type == PS_TYPE_PID ? "pid" : "shmem",
		(unsigned long long)id);
	s->cur_dst = dst_id;
	s->cur_end = 0;
	load_parent(s, dst_id);
	return 0;
}

static int check_run(struct recv_session *s, const struct ps_iov *pi, uint32_t flags)
{
	if (flags & ~(PE_PARENT | PE_LAZY | PE_PRESENT)) {
		pr_err("%s: unknown pagemap flags %#x\n", s->c->peer, flags);
		return -EINVAL;
	}
	if (!pi->nr_pages || pi->nr_pages > PS_MAX_NR_PAGES) {
		pr_err("%s: %llu pages in one request: out of range\n", s->c->peer,
		       (unsigned long long)pi->nr_pages);
		return -E2BIG;
	}
	if ((pi->vaddr & (PAGE_SIZE - 1)) || pi->vaddr >= PS_TASK_SIZE ||
	    pi->nr_pages > (PS_TASK_SIZE - pi->vaddr) / PAGE_SIZE) {
		pr_err("%s: run %#llx+%llu pages is not a user address range\n", s->c->peer,
		       (unsigned long long)pi->vaddr, (unsigned long long)pi->nr_pages);
		return -ERANGE;
	}
	if (s->cur && s->cur_dst == pi->dst_id && pi->vaddr < s->cur_end) {
		pr_err("%s: run %#llx overlaps or precedes the previous one\n", s->c->peer,
		       (unsigned long long)pi->vaddr);
		return -EINVAL;
	}
	return 0;
}

/* The data of a run straight off the socket into the xfer's buffers (xfer_fill_fn). */
struct run_src {
	struct recv_session *s;
	uint64_t vaddr;
};

static int recv_pages(void *arg, void *buf, uint64_t off, size_t len)
{
	const struct run_src *rs = arg;
	int ret = ps_conn_recv(rs->s->c, buf, len);

	if (ret)
		pr_err("%s: short page data at %#llx: %s\n", rs->s->c->peer,
		       (unsigned long long)(rs->vaddr + off), strerror(-ret));
	return ret;
}

static int recv_add(struct recv_session *s, const struct ps_iov *pi, uint32_t flags)
{
	struct run_src rs = {s, pi->vaddr};
	int ret = check_run(s, pi, flags);

	/* Old clients write without OPEN, as CRIU's server allows. */
	if (!ret && (!s->cur || s->cur_dst != pi->dst_id))
		ret = recv_open(s, pi->dst_id);
	if (ret)
		return ret;
	s->cur_end = pi->vaddr + pi->nr_pages * PAGE_SIZE;
	if ((flags & PE_PARENT) && !s->cur_has_parent) {
		pr_err("%s: run %#llx+%llu pages is in the parent image, but there is no "
		       "parent pagemap here (start the server with --prev-images-dir)\n",
		       s->c->peer, (unsigned long long)pi->vaddr,
		       (unsigned long long)pi->nr_pages);
		return -ENOENT;
	}
	if ((flags & PE_PARENT) &&
	    !pm_layer_covers(&s->cur_parent, pi->vaddr, s->cur_end)) {
		pr_err("%s: run %#llx+%llu pages is in the parent image, but the parent's "
		       "pagemap lacks some of it: the chain would be broken\n", s->c->peer,
		       (unsigned long long)pi->vaddr, (unsigned long long)pi->nr_pages);
		return -ENOENT;
	}
	if (!(flags & PE_PRESENT))
		return xfer_hole(s->cur, pi->vaddr, pi->nr_pages, flags);
	/* The local backend cuts it into entries of XFER_ENTRY_PAGES. */
	return xfer_add_fill(s->cur, pi->vaddr, pi->nr_pages, recv_pages, &rs);
}

/* One request; 1 when the client closed the transfer cleanly. */
static int recv_one(struct recv_session *s, const struct ps_iov *pi)
{
	uint8_t parent;
	int32_t status;
	int ret;

	switch (pi->cmd) {
	case PS_IOV_OPEN:
	case PS_IOV_OPEN2:
		ret = recv_open(s, pi->dst_id);
		/* Whether the client may send PE_PARENT runs (incremental dumps). */
		parent = s->cur_has_parent;
		if (!ret && pi->cmd == PS_IOV_OPEN2)
			ret = ps_conn_send(s->c, &parent, 1);
		return ret;
	case PS_IOV_PARENT:
		ret = check_dst(s->c, pi->dst_id);
		status = !ret && has_parent(s, pi->dst_id);
		return ret ? ret : ps_conn_send(s->c, &status, sizeof(status));
	case PS_IOV_ADD_F:
		return recv_add(s, pi, pi->flags);
	case PS_IOV_ADD:
		return recv_add(s, pi, PE_PRESENT);
	case PS_IOV_HOLE:
		return recv_add(s, pi, PE_PARENT);
	case PS_IOV_CLOSE:
	case PS_IOV_FORCE_CLOSE:
		status = xfer_close(steal_ptr(s->cur));
		ret = ps_conn_send(s->c, &status, sizeof(status));
		return ret ? ret : status ? status : 1;
	}
	pr_err("%s: unknown or unexpected command %#x (flags %#x)\n", s->c->peer, pi->cmd,
	       pi->flags);
	return -EINVAL;
}

int ps_recv_serve(struct ps_conn *c, int dirfd, uint32_t *pages_id)
{
	struct recv_session s = {.c = c, .cur_parent.pages_fd = -1};
	struct ps_iov pi;
	bool first = true;
	int ret;

	/* As CRIU's server: DIR/parent, if there is one, holds the parent image. */
	s.parent_dirfd = openat(dirfd, "parent", O_DIRECTORY | O_RDONLY | O_CLOEXEC);
	s.xt = xfer_target_local(dirfd, pages_id);
	if (!s.xt) {
		ret = -ENOMEM;
		goto out;
	}
	for (;;) {
		ret = first ? ps_recv_first_iov(c, &pi) : ps_recv_iov(c, &pi);
		first = false;
		if (ret == 1) {
			pr_err("%s: connection closed before CLOSE: transfer incomplete\n",
			       c->peer);
			ret = -ECONNRESET;
			break;
		}
		if (ret) {
			pr_err("%s: reading a request: %s\n", c->peer, strerror(-ret));
			break;
		}
		ret = recv_one(&s, &pi);
		if (ret < 0)
			ps_send_err(c, &pi, -ret);
		if (ret)
			break;
	}
	if (ret == 1) {
		char ch;

		/* Let the client close first, so TIME_WAIT stays on its side. */
		ps_conn_recv(c, &ch, 1);
		ret = 0;
	}
out:
	xfer_close(s.cur);
	xfer_target_abort(s.xt);
	free(s.done);
	pm_layer_free(&s.cur_parent);
	if (s.parent_dirfd >= 0)
		close(s.parent_dirfd);
	return ret;
}

static int open_dir(const char *dir)
{
	int ret = mkdir_p(dir, 0700), fd;

	if (ret) {
		pr_err("can't create %s: %s\n", dir, strerror(-ret));
		return ret;
	}
	fd = open(dir, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		pr_perror("can't open %s", dir);
		return -errno;
	}
	return fd;
}

/* DIR/parent -> @o->prev_dir, as `amber dump --prev-images-dir` makes it. */
static int link_parent(int dirfd, const struct ps_server_opts *o)
{
	int fd;

	if ((unlinkat(dirfd, "parent", 0) && errno != ENOENT) ||
	    symlinkat(o->prev_dir, dirfd, "parent")) {
		pr_perror("can't link %s/parent to %s", o->dir, o->prev_dir);
		return -errno;
	}
	fd = openat(dirfd, "parent", O_DIRECTORY | O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		pr_perror("can't open the parent images %s (relative to %s)", o->prev_dir, o->dir);
		return -errno;
	}
	close(fd);
	return 0;
}

static void announce(const struct ps_server_opts *o, int lfd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int port = o->port;

	if (!getsockname(lfd, (struct sockaddr *)&ss, &len))
		port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
						      : ((struct sockaddr_in *)&ss)->sin_port);
	if (ps_sec_none(&o->sec))
		pr_warn("unauthenticated (no --token-file or TLS): anyone who can reach port %d "
			"can %s %s\n", port, o->lazy ? "read the pages of" : "write pages into",
			o->dir);
	pr_info("listening on %s:%d (%s)\n", o->address ?: "*", port,
		o->lazy ? "lazy: serving the dump" : "receiving a dump");
	if (o->listening)
		o->listening(o->listening_arg, o->address, port);
}

int ps_server_run(const struct ps_server_opts *o)
{
	uint32_t pages_id = PS_PAGES_ID_BASE;
	struct ps_lazy_images *li = NULL;
	struct ps_gate *gate = NULL;
	cleanup_close int lfd = -1, dirfd = -1;
	int ret;

	/* A token file that can't be used is a startup error, not a per-client one. */
	if (o->sec.token_file) {
		uint8_t tok[PS_TOKEN_MAX];
		size_t len;

		ret = ps_read_token(o->sec.token_file, tok, &len);
		explicit_bzero(tok, sizeof(tok));
		if (ret)
			return ret;
	}
	dirfd = open_dir(o->dir);
	if (dirfd < 0)
		return dirfd;
	if (o->prev_dir) {
		ret = link_parent(dirfd, o);
		if (ret)
			return ret;
	}
	if (o->lazy) {
		li = ps_lazy_open(dirfd);
		if (!li)
			return -ENOMEM;
		ps_lazy_set_live(li, o->live);
	}
	ret = ps_listen(o->address, o->port, &lfd);
	if (ret)
		goto out;
	ret = ps_gate_open(lfd, o->max_connections ?: PS_DEFAULT_MAX_CONNECTIONS, &gate);
	if (ret)
		goto out;
	announce(o, lfd);
	for (;;) {
		struct ps_conn c;

		ret = ps_gate_take(gate, &c);
		if (ret)
			goto out;
		pr_info("%s: connected\n", c.peer);
		ret = ps_conn_server_secure(&c, &o->sec);
		if (!ret)
			ret = ps_conn_set_timeout(&c, o->timeout ?: DEFAULT_TIMEOUT);
		if (!ret)
			ret = o->lazy ? ps_lazy_serve(li, &c) : ps_recv_serve(&c, dirfd, &pages_id);
		ps_conn_close(&c);
		ps_gate_done(gate);
		if (!ret)
			break;
		pr_warn("%s: session ended (%s); still listening\n", c.peer,
			ret > 0 ? "client left" : strerror(-ret));
	}
	pr_info("session complete\n");
out:
	ps_gate_close(gate);
	ps_lazy_close(li);
	return ret;
}
