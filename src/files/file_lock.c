// SPDX-License-Identifier: MIT
/*
 * File locks and leases (--file-locks), in CRIU's filelocks.img.
 *
 * Dump: a "lock:" line in /proc/PID/fdinfo/FD is a lock that this fd's
 * open file description holds (flock, OFD lock, lease) or, for a POSIX
 * lock, that this task holds through it. Each is written once: a POSIX
 * lock once per owner task, the others once per description (the first
 * task and fd seen with it take it again). A task blocked waiting for a
 * lock shows only in /proc/locks ("->"), never in fdinfo: as in CRIU it
 * is not a lock, its call is restarted after the restore and waits again.
 * Without --file-locks any held lock fails the dump, naming it.
 *
 *   fdinfo "lock:\t1: FLOCK  ADVISORY  WRITE 15990 fe:00:10952963 0 EOF"
 *                      kind   class     type  pid   dev:ino     start end
 *
 * Restore: filelocks.img is checked at load (before any task exists):
 * each lock's kind, type and range, its task in the tree and the fd it
 * names in that task's table. The locks are taken by the restorer blob
 * of their task once every other fd the restore used is closed (closing
 * any fd on a file drops the task's POSIX locks on it) and before the
 * task stops for the last time: no restored task runs before every lock
 * is back, so a restarted waiter waits again.
 */
#define LOG_PREFIX "file-lock: "
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "base/log.h"
#include "base/util.h"
#include "file-lock.pb-c.h"
#include "files/files_internal.h"
#include "image/image.h"

/* file_lock_entry.flag and .type, as CRIU writes them */
#define FL_POSIX	1
#define FL_FLOCK	2
#define FL_OFD		4
#define FL_LEASE	8
#define LEASE_BREAKING	4

/* One lock line, parsed. */
struct lock_line {
	uint32_t kind;
	uint32_t type;
	int pid;
	unsigned int maj, min;
	unsigned long ino;
	long long start;
	bool to_eof;
	long long end;
	char kind_s[16], class_s[16], type_s[16];
};

/* ---- dump ---- */

struct dumped_lock {
	uint32_t kind, type;
	pid_t owner;	  /* POSIX: the task; else 0 */
	uint32_t file_id; /* flock, OFD, lease: the description; else 0 */
	dev_t dev;
	ino_t ino;
	long long start, len;
};

static int parse_lock(const char *s, struct lock_line *l)
{
	char end[24];

	if (sscanf(s, "%*d: %15s %15s %15s %d %x:%x:%lu %lld %23s", l->kind_s, l->class_s,
		   l->type_s, &l->pid, &l->maj, &l->min, &l->ino, &l->start, end) != 9)
		return -EINVAL;
	if (!strcmp(l->kind_s, "POSIX"))
		l->kind = FL_POSIX;
	else if (!strcmp(l->kind_s, "FLOCK"))
		l->kind = FL_FLOCK;
	else if (!strcmp(l->kind_s, "OFDLCK"))
		l->kind = FL_OFD;
	else if (!strcmp(l->kind_s, "LEASE"))
		l->kind = FL_LEASE;
	else
		return -EINVAL;
	if (!strcmp(l->type_s, "READ"))
		l->type = F_RDLCK;
	else if (!strcmp(l->type_s, "WRITE"))
		l->type = F_WRLCK;
	else if (!strcmp(l->type_s, "UNLCK") && l->kind == FL_LEASE)
		l->type = F_UNLCK; /* a lease being broken, to none */
	else
		return -EINVAL;
	l->to_eof = !strcmp(end, "EOF");
	if (!l->to_eof && sscanf(end, "%lld", &l->end) != 1)
		return -EINVAL;
	return 0;
}

/*
 * A lease being broken shows its class BREAKING and, as its type, the
 * type the break goes to (the kernel's target_leasetype()): UNLCK, or
 * READ for a write lease being downgraded. Saved as CRIU does, that
 * target with LEASE_BREAKING; restored by taking the lease and breaking
 * it again (restorer/file_locks.c).
 */
static bool lease_breaking(const struct lock_line *l)
{
	return l->kind == FL_LEASE && !strcmp(l->class_s, "BREAKING");
}

/* Why amber does not save @l, or NULL. */
static const char *lock_refused(const struct lock_line *l)
{
	if (l->kind == FL_LEASE && strcmp(l->class_s, "ACTIVE") && !lease_breaking(l))
		return "a lease in this state is not supported";
	if (lease_breaking(l) && l->type == F_WRLCK)
		return "a lease being broken to a write lease";
	if (l->type == F_UNLCK && !lease_breaking(l))
		return "an unlocked lease";
	if (l->kind != FL_LEASE && strcmp(l->class_s, "ADVISORY"))
		return "only advisory locks are supported";
	if (l->start < 0 || (!l->to_eof && l->end < l->start))
		return "its range is out of bounds";
	return NULL;
}

static bool lock_seen(struct files_dump *fdump, const struct dumped_lock *k)
{
	for (int i = 0; i < fdump->nr_locks; i++) {
		struct dumped_lock *o = &fdump->locks[i];

		if (o->kind == k->kind && o->type == k->type && o->owner == k->owner &&
		    o->file_id == k->file_id && o->dev == k->dev && o->ino == k->ino &&
		    o->start == k->start && o->len == k->len)
			return true;
	}
	return false;
}

static int dump_one_lock(struct files_dump_ctx *fc, const struct fd_desc *d, uint32_t file_id,
			 const char *text)
{
	struct files_dump *fdump = fc->st;
	FileLockEntry fle = FILE_LOCK_ENTRY__INIT;
	struct lock_line l;
	struct dumped_lock k, *n;
	const char *why;
	int ret;

	if (parse_lock(text, &l)) {
		pr_err("fd %d of pid %d: can't parse the lock \"%s\"\n", d->fd, d->pid, text);
		return -EINVAL;
	}
	if (!fc->file_locks) {
		pr_err("fd %d of pid %d (%s) holds a lock (%s): dump with --file-locks to save it\n",
		       d->fd, d->pid, d->link, text);
		return -ENOTSUP;
	}
	why = lock_refused(&l);
	if (why) {
		pr_err("fd %d of pid %d (%s): lock \"%s\": %s\n", d->fd, d->pid, d->link, text, why);
		return -ENOTSUP;
	}
	k = (struct dumped_lock){
		.kind = l.kind, .type = l.type,
		.owner = l.kind == FL_POSIX ? d->pid : 0,
		.file_id = l.kind == FL_POSIX ? 0 : file_id,
		.dev = makedev(l.maj, l.min), .ino = l.ino,
		.start = l.start, .len = l.to_eof ? 0 : l.end + 1 - l.start,
	};
	if (lock_seen(fdump, &k)) /* another fd of the same description or owner */
		return 0;
	n = xrealloc_array(fdump->locks, fdump->nr_locks + 1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	fdump->locks = n;
	n[fdump->nr_locks++] = k;
	fle.flag = l.kind;
	fle.type = l.type | (lease_breaking(&l) ? LEASE_BREAKING : 0);
	fle.pid = fd_ns_pid(d, d->pid);
	fle.fd = d->fd;
	fle.start = k.start;
	fle.len = k.len;
	ret = files_get_img(fc, &fdump->file_locks, IMG_FILE_LOCKS);
	if (!ret)
		ret = img_write_msg(fdump->file_locks, &fle.base);
	if (!ret)
		pr_info("pid %d fd %d: %s %s%s lock %lld+%lld saved\n", d->pid, d->fd, l.kind_s,
			lease_breaking(&l) ? "being broken to " : "", l.type_s, k.start, k.len);
	return ret;
}

int files_dump_locks(struct files_dump_ctx *fc, const struct fd_desc *d, uint32_t file_id)
{
	char name[64];
	cleanup_free char *buf = NULL;
	int ret = 0;

	snprintf(name, sizeof(name), "fdinfo/%d", d->fd);
	buf = read_proc(d->pid, name, NULL);
	if (!buf)
		return errno ? -errno : -EIO;
	for (char *p = buf; p && *p && !ret; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		char *eol;

		if (strncmp(p, "lock:", 5))
			continue;
		eol = strchr(p, '\n');
		if (eol)
			*eol = '\0';
		ret = dump_one_lock(fc, d, file_id, p + 5 + strspn(p + 5, " \t"));
		if (eol)
			*eol = '\n';
	}
	return ret;
}

int files_locks_dump_fini(struct files_dump_ctx *fc)
{
	int ret = img_close(fc->st->file_locks);

	fc->st->file_locks = NULL;
	return ret;
}

void files_locks_dump_free(struct files_dump_ctx *fc)
{
	img_close(fc->st->file_locks);
	fc->st->file_locks = NULL;
	free(fc->st->locks);
	fc->st->locks = NULL;
}

/* ---- restore ---- */

static const char *kind_name(uint32_t flag)
{
	switch (flag) {
	case FL_POSIX: return "POSIX";
	case FL_FLOCK: return "flock";
	case FL_OFD: return "OFD";
	case FL_LEASE: return "lease";
	}
	return NULL;
}

/* Is lock @i of filelocks.img one amber can take again, in a task of the tree? */
static int check_lock(struct files_rst *fr, int i, const FileLockEntry *e)
{
	const char *kind = kind_name(e->flag);
	struct rtask_fds *tf = NULL;
	bool ranged = e->flag == FL_POSIX || e->flag == FL_OFD;

	if (!kind) {
		pr_err("filelocks.img: lock %d has the unknown kind %#x\n", i, e->flag);
		return -EINVAL;
	}
	if (e->flag == FL_LEASE && e->type & LEASE_BREAKING) {
		/* being broken: to no lease, or a write lease down to read */
		if (e->type != (F_UNLCK | LEASE_BREAKING) && e->type != (F_RDLCK | LEASE_BREAKING)) {
			pr_err("filelocks.img: lease %d is being broken to the type %#x\n", i,
			       e->type & ~LEASE_BREAKING);
			return -EINVAL;
		}
	} else if (e->type != F_RDLCK && e->type != F_WRLCK) {
		pr_err("filelocks.img: %s lock %d has the type %#x (neither read nor write)\n",
		       kind, i, e->type);
		return -EINVAL;
	}
	if (e->start < 0 || e->len < 0 || (e->len && e->start > INT64_MAX - e->len) ||
	    (!ranged && (e->start || e->len))) {
		pr_err("filelocks.img: %s lock %d has the range %" PRId64 "+%" PRId64 "\n", kind, i,
		       e->start, e->len);
		return -EINVAL;
	}
	for (int t = 0; t < fr->nr_tasks && !tf; t++)
		if (fr->tasks[t].pid == e->pid)
			tf = &fr->tasks[t];
	for (int j = 0; tf && j < tf->nr; j++)
		if ((int)tf->fds[j]->fd == e->fd)
			return 0;
	pr_err("filelocks.img: %s lock %d is held by fd %d of pid %d, %s\n", kind, i, e->fd,
	       e->pid, tf ? "which that task does not have" : "which is not a live task of the tree");
	return -EINVAL;
}

int files_locks_load(struct files_rst_ctx *fc)
{
	struct files_rst *fr = fc->st;
	struct img *img = img_open_optional(fc->dirfd, IMG_FILE_LOCKS, 0);
	ProtobufCMessage *m;
	int ret;

	if (!img)
		return errno == ENOENT ? 0 : -errno;
	while ((ret = img_read_msg(img, &file_lock_entry__descriptor, &m)) == 1) {
		FileLockEntry **n = xrealloc_array(fr->locks, fr->nr_locks + 1, sizeof(*n));

		if (!n) {
			protobuf_c_message_free_unpacked(m, NULL);
			ret = -ENOMEM;
			break;
		}
		fr->locks = n;
		n[fr->nr_locks] = (FileLockEntry *)m;
		ret = check_lock(fr, fr->nr_locks, n[fr->nr_locks]);
		fr->nr_locks++;
		if (ret)
			break;
	}
	img_close(img);
	if (ret < 0)
		return ret;
	if (fr->nr_locks && !fc->file_locks) {
		pr_err("filelocks.img holds %d file locks: restore with --file-locks to take them again\n",
		       fr->nr_locks);
		return -EINVAL;
	}
	if (fr->nr_locks)
		pr_info("%d file locks to take again\n", fr->nr_locks);
	return 0;
}

int files_task_locks(struct files_rst_ctx *fc, int ti, struct files_lock *out, int max)
{
	struct files_rst *fr = fc->st;
	int n = 0;

	if (!fr || ti < 0 || ti >= fr->nr_tasks)
		return -EINVAL;
	for (int i = 0; i < fr->nr_locks; i++) {
		const FileLockEntry *e = fr->locks[i];

		if (e->pid != fr->tasks[ti].pid)
			continue;
		if (out && n < max)
			out[n] = (struct files_lock){
				.fd = e->fd,
				.kind = e->flag == FL_POSIX ? FILES_LOCK_POSIX :
					e->flag == FL_FLOCK ? FILES_LOCK_FLOCK :
					e->flag == FL_OFD ? FILES_LOCK_OFD : FILES_LOCK_LEASE,
				.write = e->type == F_WRLCK,
				.breaking = e->flag == FL_LEASE && e->type & LEASE_BREAKING,
				.break_to_read = e->type == (F_RDLCK | LEASE_BREAKING),
				.start = e->start,
				.len = e->len,
			};
		n++;
	}
	return n;
}

void files_locks_rst_free(struct files_rst *fr)
{
	for (int i = 0; i < fr->nr_locks; i++)
		protobuf_c_message_free_unpacked(&fr->locks[i]->base, NULL);
	free(fr->locks);
	fr->locks = NULL;
	fr->nr_locks = 0;
}
