// SPDX-License-Identifier: MIT
/*
 * Serving a dump to GET requests (page-server --lazy-pages).
 *
 *   lazy_images            the directory, and the tasks asked for so far
 *     lazy_task            one pid: its pagemap runs sorted by vaddr, and
 *                          its pages-<n>.img
 *       lazy_run           {vaddr, nr_pages, offset in pages file, csum};
 *                          verified once, before its first page is sent
 *
 * A task is loaded when first asked for, so a request for a pid that is
 * not in the dump costs one failed open and an error reply.
 */
#define LOG_PREFIX "page-server: "
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "image.h"
#include "image_magic.h"
#include "log.h"
#include "pagemap.pb-c.h"
#include "pserver.h"
#include "util.h"

#define MAX_TASKS     4096
#define PID_MAX_LIMIT (1 << 22)
/* Largest entry whose checksum we verify in one read (amber's are 2 MiB). */
#define MAX_VERIFY (64ull << 20)
#define SEND_CHUNK (2ull << 20)

struct lazy_run {
	uint64_t vaddr;
	uint64_t nr_pages;
	uint64_t off;
	uint64_t csum;
	bool has_csum;
	bool verified;
};

struct lazy_task {
	int pid;
	int pages_fd;
	struct lazy_run *runs;
	int nr_runs;
};

struct lazy_images {
	int dirfd;
	struct lazy_task *tasks;
	int nr_tasks;
	uint8_t *buf; /* SEND_CHUNK */
};

struct lazy_images *lazy_images_open(int dirfd)
{
	struct lazy_images *li = xzalloc(sizeof(*li));

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

void lazy_images_close(struct lazy_images *li)
{
	if (!li)
		return;
	for (int i = 0; i < li->nr_tasks; i++) {
		close(li->tasks[i].pages_fd);
		free(li->tasks[i].runs);
	}
	free(li->tasks);
	free(li->buf);
	free(li);
}

static int run_cmp(const void *a, const void *b)
{
	const struct lazy_run *x = a, *y = b;

	return x->vaddr < y->vaddr ? -1 : x->vaddr > y->vaddr;
}

/* Reads pagemap-<pid>.img into @t; entries without data here are skipped (holes). */
static int load_runs(struct lazy_images *li, struct lazy_task *t, uint32_t *pages_id,
		     uint64_t *bytes)
{
	struct img *img = img_open_optional(li->dirfd, IMG_PAGEMAP, t->pid);
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
		struct lazy_run *n;

		if (present && pe->nr_pages && !(pe->vaddr & (PAGE_SIZE - 1)) &&
		    pe->vaddr < PS_TASK_SIZE) {
			n = xrealloc_array(t->runs, t->nr_runs + 1, sizeof(*n));
			if (!n) {
				pagemap_entry__free_unpacked(pe, NULL);
				ret = -ENOMEM;
				break;
			}
			t->runs = n;
			n[t->nr_runs++] = (struct lazy_run){pe->vaddr, pe->nr_pages, off,
							    pe->amber_csum, pe->has_amber_csum};
		} else if (present) {
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
	qsort(t->runs, t->nr_runs, sizeof(*t->runs), run_cmp);
	for (int i = 1; i < t->nr_runs; i++)
		if (t->runs[i - 1].vaddr + t->runs[i - 1].nr_pages * PAGE_SIZE > t->runs[i].vaddr)
			return -EINVAL;
	*bytes = off;
	return 0;
}

static int load_task(struct lazy_images *li, int pid, struct lazy_task **out)
{
	struct lazy_task t = {.pid = pid, .pages_fd = -1}, *n;
	uint32_t pages_id = 0;
	uint64_t bytes = 0;
	char name[64] = "";
	struct stat st;
	int ret;

	if (li->nr_tasks >= MAX_TASKS)
		return -ENOSPC;
	ret = load_runs(li, &t, &pages_id, &bytes);
	if (!ret) {
		img_name(IMG_PAGES, pages_id, name, sizeof(name));
		t.pages_fd = openat(li->dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (t.pages_fd < 0 || fstat(t.pages_fd, &st))
			ret = -errno;
		else if ((uint64_t)st.st_size != bytes)
			ret = -EINVAL; /* truncated or not this pagemap's */
	}
	n = ret ? NULL : xrealloc_array(li->tasks, li->nr_tasks + 1, sizeof(*n));
	if (!n) {
		if (t.pages_fd >= 0)
			close(t.pages_fd);
		free(t.runs);
		return ret ? ret : -ENOMEM;
	}
	li->tasks = n;
	n[li->nr_tasks] = t;
	*out = &n[li->nr_tasks++];
	pr_info("serving pid %d: %d runs from %s\n", pid, t.nr_runs, name);
	return 0;
}

static int find_task(struct lazy_images *li, int pid, struct lazy_task **out)
{
	for (int i = 0; i < li->nr_tasks; i++) {
		if (li->tasks[i].pid == pid) {
			*out = &li->tasks[i];
			return 0;
		}
	}
	return load_task(li, pid, out);
}

static struct lazy_run *find_run(struct lazy_task *t, uint64_t vaddr)
{
	int lo = 0, hi = t->nr_runs;

	while (lo < hi) {
		int mid = lo + (hi - lo) / 2;
		struct lazy_run *r = &t->runs[mid];

		if (vaddr < r->vaddr)
			hi = mid;
		else if (vaddr >= r->vaddr + r->nr_pages * PAGE_SIZE)
			lo = mid + 1;
		else
			return r;
	}
	return NULL;
}

static int verify_run(struct lazy_task *t, struct lazy_run *r)
{
	uint64_t len = r->nr_pages * PAGE_SIZE;
	cleanup_free uint8_t *buf = NULL;

	if (r->verified || !r->has_csum)
		return 0;
	if (len > MAX_VERIFY)
		return -EFBIG;
	buf = malloc(len);
	if (!buf)
		return -ENOMEM;
	if (pread_full(t->pages_fd, buf, len, r->off))
		return -EIO;
	if (amber_csum(buf, len, r->vaddr) != r->csum) {
		pr_err("pid %d: pages at %#llx (+%llu pages) fail their checksum: image corrupt\n",
		       t->pid, (unsigned long long)r->vaddr, (unsigned long long)r->nr_pages);
		return -EBADMSG;
	}
	r->verified = true;
	return 0;
}

static int send_pages(struct lazy_images *li, struct ps_conn *c, struct lazy_task *t,
		      struct lazy_run *r, const struct ps_iov *req)
{
	uint64_t avail = r->nr_pages - (req->vaddr - r->vaddr) / PAGE_SIZE;
	uint64_t off = r->off + (req->vaddr - r->vaddr), left;
	struct ps_iov rep = {
	    .cmd = PS_IOV_ADD_F, .flags = PE_PRESENT, .vaddr = req->vaddr, .dst_id = req->dst_id};
	int ret = verify_run(t, r);

	if (ret) {
		pr_err("%s: GET %d %#llx: %s\n", c->peer, t->pid, (unsigned long long)req->vaddr,
		       strerror(-ret));
		return pserver_send_err(c, req, -ret);
	}
	/* Like CRIU's server: at most what the request asked, maybe less. */
	rep.nr_pages = min(avail, req->nr_pages);
	ret = ps_send_iov(c, &rep);
	for (left = rep.nr_pages * PAGE_SIZE; left && !ret;) {
		uint64_t n = min(left, SEND_CHUNK);

		/* A read failure mid-reply can only be reported by closing. */
		if (pread_full(t->pages_fd, li->buf, n, off)) {
			pr_perror("pid %d: can't read pages", t->pid);
			return -EIO;
		}
		ret = ps_conn_send(c, li->buf, n);
		off += n;
		left -= n;
	}
	return ret;
}

int lazy_serve_get(struct lazy_images *li, struct ps_conn *c, const struct ps_iov *pi)
{
	struct ps_iov hole = {.cmd = PS_IOV_ADD_F, .vaddr = pi->vaddr, .dst_id = pi->dst_id};
	struct lazy_task *t;
	struct lazy_run *r;
	int ret;

	if (!pi->nr_pages || pi->nr_pages > PS_MAX_NR_PAGES) {
		pr_err("%s: GET of %llu pages: out of range\n", c->peer,
		       (unsigned long long)pi->nr_pages);
		return pserver_send_err(c, pi, E2BIG);
	}
	if ((pi->vaddr & (PAGE_SIZE - 1)) || pi->vaddr >= PS_TASK_SIZE) {
		pr_err("%s: GET at %#llx: not a user page address\n", c->peer,
		       (unsigned long long)pi->vaddr);
		return pserver_send_err(c, pi, ERANGE);
	}
	if (!pi->dst_id || pi->dst_id >= PID_MAX_LIMIT) {
		pr_err("%s: GET for pid %llu: out of range\n", c->peer,
		       (unsigned long long)pi->dst_id);
		return pserver_send_err(c, pi, ESRCH);
	}
	ret = find_task(li, (int)pi->dst_id, &t);
	if (ret) {
		pr_err("%s: GET for pid %llu: %s\n", c->peer, (unsigned long long)pi->dst_id,
		       ret == -ESRCH ? "not in this dump" : strerror(-ret));
		return pserver_send_err(c, pi, -ret);
	}
	r = find_run(t, pi->vaddr);
	if (!r) {
		pr_debug("%s: GET %d %#llx: hole\n", c->peer, t->pid,
			 (unsigned long long)pi->vaddr);
		return ps_send_iov(c, &hole);
	}
	return send_pages(li, c, t, r, pi);
}
