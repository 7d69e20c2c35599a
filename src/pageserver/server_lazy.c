// SPDX-License-Identifier: MIT
/*
 * Serving a dump to GET requests (page-server --lazy-pages).
 *
 *   ps_lazy_images         the directory, and the pagemaps asked for so far
 *     lazy_map             one pagemap, keyed by (type, id): a task's
 *                          (PS_TYPE_PID, pid: pagemap-<pid>.img) or a shmem
 *                          object's (PS_TYPE_SHMEM, shmid: pagemap-shmem-
 *                          <shmid>.img, where vaddr is the offset in the
 *                          object); its runs sorted by vaddr, and its
 *                          pages-<n>.img
 *       lazy_run           {vaddr, nr_pages, offset in pages file, csum};
 *                          verified once, before its first page is sent;
 *                          or a PE_LAZY entry of `dump --lazy-pages`, read
 *                          from the frozen task's /proc/PID/mem (live)
 *
 * A plain GET names a task, a GET with PS_GET_SHMEM a shmem object; both
 * kinds are served alike. A pagemap is loaded when first asked for, so a
 * request for a pid or shmid that is not in the dump costs one failed open
 * and an error reply.
 */
#define LOG_PREFIX "page-server: "
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "image/image.h"
#include "image/magic.h"
#include "base/log.h"
#include "pagemap.pb-c.h"
#include "mem/pagemap_chain.h"
#include "pageserver/server.h"
#include "base/util.h"

/* Pagemaps loaded at once, tasks and shmem objects together. */
#define MAX_MAPS      4096
#define PID_MAX_LIMIT (1 << 22)
/* Largest entry whose checksum we verify in one read (amber's are 256 KiB). */
#define MAX_VERIFY (64ull << 20)
#define SEND_CHUNK (2ull << 20)

struct lazy_run {
	uint64_t vaddr;
	uint64_t nr_pages;
	uint64_t off;
	uint64_t csum;
	uint8_t csum_ver; /* AMBER_CSUM_V1, _V2, 0: none */
	bool verified;
	bool live; /* in the frozen task, not in the pages file */
};

struct lazy_map {
	int type;    /* PS_TYPE_PID or PS_TYPE_SHMEM */
	uint64_t id; /* pid or shmid */
	int pages_fd;
	int mem_fd; /* /proc/PID/mem of the frozen task, for live runs; -1 */
	struct lazy_run *runs;
	int nr_runs;
};

struct ps_lazy_images {
	int dirfd;
	struct lazy_map *maps;
	int nr_maps;
	uint8_t *buf; /* SEND_CHUNK */
	const struct ps_live_tree *live;
};

struct ps_lazy_images *ps_lazy_open(int dirfd)
{
	struct ps_lazy_images *li = xzalloc(sizeof(*li));

	if (!li)
		return NULL;
	li->dirfd = dirfd;
	li->buf = malloc(SEND_CHUNK);
	if (!li->buf) {
		free(li);
		return NULL;
	}
	return li;
}

void ps_lazy_set_live(struct ps_lazy_images *li, const struct ps_live_tree *live)
{
	li->live = live;
}

/* Where image pid @vpid of the frozen tree runs here, or 0. */
static pid_t live_pid(const struct ps_lazy_images *li, uint64_t vpid)
{
	for (int i = 0; li->live && i < li->live->nr; i++)
		if ((uint64_t)li->live->vpids[i] == vpid)
			return li->live->pids[i];
	return 0;
}

void ps_lazy_close(struct ps_lazy_images *li)
{
	if (!li)
		return;
	for (int i = 0; i < li->nr_maps; i++) {
		if (li->maps[i].mem_fd >= 0)
			close(li->maps[i].mem_fd);
		close(li->maps[i].pages_fd);
		free(li->maps[i].runs);
	}
	free(li->maps);
	free(li->buf);
	free(li);
}

/* What log lines call an object of @type. */
static const char *map_kind(int type)
{
	return type == PS_TYPE_SHMEM ? "shmem" : "pid";
}

static int run_cmp(const void *a, const void *b)
{
	const struct lazy_run *x = a, *y = b;

	return x->vaddr < y->vaddr ? -1 : x->vaddr > y->vaddr;
}

/*
 * Reads @m's pagemap (pagemap-<pid>.img or pagemap-shmem-<shmid>.img) into
 * @m; entries without data here are skipped (holes).
 */
static int load_runs(struct ps_lazy_images *li, struct lazy_map *m, uint32_t *pages_id,
		     uint64_t *bytes)
{
	enum img_type type = m->type == PS_TYPE_SHMEM ? IMG_SHMEM_PAGEMAP : IMG_PAGEMAP;
	struct img *img = img_open_optional(li->dirfd, type, m->id);
	PagemapHead *ph = NULL;
	PagemapEntry *pe;
	uint64_t off = 0;
	int ret;

	if (!img)
		return errno == ENOENT ? -ESRCH : -errno;
	ret = img_read_msg(img, &pagemap_head__descriptor, (ProtobufCMessage **)&ph);
	if (ret <= 0) {
		img_close(img);
		return -EINVAL;
	}
	*pages_id = ph->pages_id;
	pagemap_head__free_unpacked(ph, NULL);
	while ((ret = img_read_msg(img, &pagemap_entry__descriptor, (ProtobufCMessage **)&pe)) >
	       0) {
		bool present = !pe->has_flags || (pe->flags & PE_PRESENT);
		/* Served from the frozen tree; elsewhere a hole, as before (no data here) */
		bool live = pe->has_flags && pe->flags == PE_LAZY && m->mem_fd >= 0;
		struct lazy_run *n;

		if (pagemap_entry_fixup(pe)) {
			pagemap_entry__free_unpacked(pe, NULL);
			ret = -EINVAL;
			break;
		}
		if ((present || live) && pe->nr_pages && !(pe->vaddr & (PAGE_SIZE - 1)) &&
		    pe->vaddr < PS_TASK_SIZE) {
			n = xrealloc_array(m->runs, m->nr_runs + 1, sizeof(*n));
			if (!n) {
				pagemap_entry__free_unpacked(pe, NULL);
				ret = -ENOMEM;
				break;
			}
			m->runs = n;
			n[m->nr_runs] = (struct lazy_run){pe->vaddr, pe->nr_pages, off,
							  .live = live};
			n[m->nr_runs].csum_ver = pagemap_entry_csum(pe, &n[m->nr_runs].csum);
			m->nr_runs++;
		} else if (present || live) {
			ret = -EINVAL;
		}
		if (present)
			off += (uint64_t)pe->nr_pages * PAGE_SIZE;
		pagemap_entry__free_unpacked(pe, NULL);
		if (ret < 0)
			break;
	}
	img_close(img);
	if (ret < 0)
		return ret;
	/* A pagemap with no data here (all PE_PARENT) has no runs: runs is NULL. */
	if (m->nr_runs)
		qsort(m->runs, m->nr_runs, sizeof(*m->runs), run_cmp);
	for (int i = 1; i < m->nr_runs; i++)
		if (m->runs[i - 1].vaddr + m->runs[i - 1].nr_pages * PAGE_SIZE > m->runs[i].vaddr)
			return -EINVAL;
	*bytes = off;
	return 0;
}

static int load_map(struct ps_lazy_images *li, int type, uint64_t id, struct lazy_map **out)
{
	struct lazy_map m = {.type = type, .id = id, .pages_fd = -1, .mem_fd = -1}, *n;
	pid_t pid = type == PS_TYPE_PID ? live_pid(li, id) : 0;
	uint32_t pages_id = 0;
	uint64_t bytes = 0;
	char name[64] = "";
	struct stat st;
	int ret;

	if (li->nr_maps >= MAX_MAPS)
		return -ENOSPC;
	if (pid) {
		snprintf(name, sizeof(name), "/proc/%d/mem", pid);
		m.mem_fd = open(name, O_RDONLY | O_CLOEXEC);
		if (m.mem_fd < 0) {
			ret = errno ? -errno : -EIO;
			pr_err("can't open %s: %s\n", name, strerror(-ret));
			return ret;
		}
	}
	ret = load_runs(li, &m, &pages_id, &bytes);
	if (!ret) {
		img_name(IMG_PAGES, pages_id, name, sizeof(name));
		m.pages_fd = img_file_open(li->dirfd, name, O_RDONLY);
		if (m.pages_fd < 0)
			ret = m.pages_fd;
		else if (fstat(m.pages_fd, &st))
			ret = -errno;
		else if ((uint64_t)st.st_size != bytes)
			ret = -EINVAL; /* truncated or not this pagemap's */
	}
	n = ret ? NULL : xrealloc_array(li->maps, li->nr_maps + 1, sizeof(*n));
	if (!n) {
		if (m.pages_fd >= 0)
			close(m.pages_fd);
		if (m.mem_fd >= 0)
			close(m.mem_fd);
		free(m.runs);
		return ret ? ret : -ENOMEM;
	}
	li->maps = n;
	n[li->nr_maps] = m;
	*out = &n[li->nr_maps++];
	pr_info("serving %s %llu: %d runs from %s\n", map_kind(type), (unsigned long long)id,
		m.nr_runs, name);
	return 0;
}

static int find_map(struct ps_lazy_images *li, int type, uint64_t id, struct lazy_map **out)
{
	for (int i = 0; i < li->nr_maps; i++) {
		if (li->maps[i].type == type && li->maps[i].id == id) {
			*out = &li->maps[i];
			return 0;
		}
	}
	return load_map(li, type, id, out);
}

static struct lazy_run *find_run(struct lazy_map *m, uint64_t vaddr)
{
	int lo = 0, hi = m->nr_runs;

	while (lo < hi) {
		int mid = lo + (hi - lo) / 2;
		struct lazy_run *r = &m->runs[mid];

		if (vaddr < r->vaddr)
			hi = mid;
		else if (vaddr >= r->vaddr + r->nr_pages * PAGE_SIZE)
			lo = mid + 1;
		else
			return r;
	}
	return NULL;
}

static int verify_run(struct lazy_map *m, struct lazy_run *r)
{
	uint64_t len = r->nr_pages * PAGE_SIZE;
	cleanup_free uint8_t *buf = NULL;

	if (r->verified || !r->csum_ver)
		return 0;
	if (len > MAX_VERIFY)
		return -EFBIG;
	buf = malloc(len);
	if (!buf)
		return -ENOMEM;
	if (pread_full(m->pages_fd, buf, len, r->off))
		return -EIO;
	if (amber_csum_ver(buf, len, r->vaddr, r->csum_ver) != r->csum) {
		pr_err("%s %llu: pages at %#llx (+%llu pages) fail their checksum: image corrupt\n",
		       map_kind(m->type), (unsigned long long)m->id, (unsigned long long)r->vaddr,
		       (unsigned long long)r->nr_pages);
		return -EBADMSG;
	}
	r->verified = true;
	return 0;
}

static int send_pages(struct ps_lazy_images *li, struct ps_conn *c, struct lazy_map *m,
		      struct lazy_run *r, const struct ps_iov *req)
{
	uint64_t avail = r->nr_pages - (req->vaddr - r->vaddr) / PAGE_SIZE;
	uint64_t off = r->live ? req->vaddr : r->off + (req->vaddr - r->vaddr), left;
	int fd = r->live ? m->mem_fd : m->pages_fd;
	struct ps_iov rep = {
	    .cmd = PS_IOV_ADD_F, .flags = PE_PRESENT, .vaddr = req->vaddr, .dst_id = req->dst_id};
	int ret = verify_run(m, r);

	if (ret) {
		pr_err("%s: GET %s %llu %#llx: %s\n", c->peer, map_kind(m->type),
		       (unsigned long long)m->id, (unsigned long long)req->vaddr, strerror(-ret));
		return ps_send_err(c, req, -ret);
	}
	/* Like CRIU's server: at most what the request asked, maybe less. */
	rep.nr_pages = min(avail, req->nr_pages);
	ret = ps_send_iov(c, &rep);
	for (left = rep.nr_pages * PAGE_SIZE; left && !ret;) {
		uint64_t n = min(left, SEND_CHUNK);

		/* A read failure mid-reply can only be reported by closing. */
		if (pread_full(fd, li->buf, n, off)) {
			pr_perror("%s %llu: can't read pages", map_kind(m->type),
				  (unsigned long long)m->id);
			return -EIO;
		}
		ret = ps_conn_send(c, li->buf, n);
		off += n;
		left -= n;
	}
	return ret;
}

/* 0 if @pi is a GET this server can answer, else -errno for its error reply (logged). */
static int check_get(struct ps_conn *c, const struct ps_iov *pi, int type)
{
	/* Only flags we know: a new one may change what dst_id and vaddr mean. */
	if (pi->flags & ~PS_GET_FLAGS) {
		pr_err("%s: GET with unknown flags %#x\n", c->peer, pi->flags);
		return -EINVAL;
	}
	if (!pi->nr_pages || pi->nr_pages > PS_MAX_NR_PAGES) {
		pr_err("%s: GET of %llu pages: out of range\n", c->peer,
		       (unsigned long long)pi->nr_pages);
		return -E2BIG;
	}
	/* A shmem offset has the bound of an address, as in the receiving server. */
	if ((pi->vaddr & (PAGE_SIZE - 1)) || pi->vaddr >= PS_TASK_SIZE) {
		pr_err("%s: GET at %#llx: not a %s\n", c->peer, (unsigned long long)pi->vaddr,
		       type == PS_TYPE_SHMEM ? "page offset in a shmem object"
					     : "user page address");
		return -ERANGE;
	}
	/* Pids have the kernel's bound; shmids are inode numbers or SysV ids (0 too). */
	if (type == PS_TYPE_PID && (!pi->dst_id || pi->dst_id >= PID_MAX_LIMIT)) {
		pr_err("%s: GET for %s %llu: out of range\n", c->peer, map_kind(type),
		       (unsigned long long)pi->dst_id);
		return -ESRCH;
	}
	return 0;
}

/*
 * Answers one GET on @c: ADD_F + data, a hole (nr_pages 0), or PS_IOV_ERR.
 * Returns 0 when answered (even with an error reply), -errno when the
 * connection itself failed.
 */
int ps_lazy_serve_get(struct ps_lazy_images *li, struct ps_conn *c, const struct ps_iov *pi)
{
	struct ps_iov hole = {.cmd = PS_IOV_ADD_F, .vaddr = pi->vaddr, .dst_id = pi->dst_id};
	int type = pi->flags & PS_GET_SHMEM ? PS_TYPE_SHMEM : PS_TYPE_PID;
	struct lazy_map *m;
	struct lazy_run *r;
	int ret = check_get(c, pi, type);

	if (ret)
		return ps_send_err(c, pi, -ret);
	ret = find_map(li, type, pi->dst_id, &m);
	if (ret) {
		pr_err("%s: GET for %s %llu: %s\n", c->peer, map_kind(type),
		       (unsigned long long)pi->dst_id,
		       ret == -ESRCH ? "not in this dump" : strerror(-ret));
		return ps_send_err(c, pi, -ret);
	}
	r = find_run(m, pi->vaddr);
	if (!r) {
		pr_debug("%s: GET %s %llu %#llx: hole\n", c->peer, map_kind(type),
			 (unsigned long long)m->id, (unsigned long long)pi->vaddr);
		return ps_send_iov(c, &hole);
	}
	return send_pages(li, c, m, r, pi);
}

int ps_lazy_serve(struct ps_lazy_images *li, struct ps_conn *c)
{
	struct ps_iov pi;
	bool first = true;
	int ret;

	for (;;) {
		ret = first ? ps_recv_first_iov(c, &pi) : ps_recv_iov(c, &pi);
		first = false;
		if (ret)
			return ret == 1 ? 1 : ret;
		if (pi.cmd == PS_IOV_CLOSE || pi.cmd == PS_IOV_FORCE_CLOSE) {
			int32_t status = 0;

			return ps_conn_send(c, &status, sizeof(status));
		}
		if (pi.cmd != PS_IOV_GET) {
			pr_err("%s: command %#x in lazy mode: only GET and CLOSE\n", c->peer,
			       pi.cmd);
			ret = ps_send_err(c, &pi, EINVAL);
		} else {
			ret = ps_lazy_serve_get(li, c, &pi);
		}
		if (ret)
			return ret;
	}
}
