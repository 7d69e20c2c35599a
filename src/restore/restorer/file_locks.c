// SPDX-License-Identifier: MIT
/* File locks in the restorer (file_locks.h). Raw syscalls only. */
#include "file_locks.h"
#include "sys.h"

#define F_SETLK	    6
#define F_OFD_SETLK 37
#define F_GETFL	    3
#define F_SETLEASE  1024
#define F_RDLCK	    0
#define F_WRLCK	    1
#define LOCK_SH	    1
#define LOCK_EX	    2
#define LOCK_NB	    4
#define O_ACCMODE   3
#define O_RDONLY    0
#define O_WRONLY    1
#define O_NONBLOCK  04000
#define O_CLOEXEC   02000000
#define AT_FDCWD    (-100)
#define EAGAIN	    11
#define EINVAL	    22

/* The kernel's struct flock on x86_64: 32 bytes. */
struct k_flock {
	int16_t type, whence;
	int32_t pad;
	int64_t start, len;
	int32_t pid, pad2;
};

/*
 * A lease that was being broken at the dump: take the lease it was
 * before the break, then break it again the way a conflicting open did,
 * by opening the file anew without blocking (-EAGAIN starts the break;
 * the kernel's lease-break-time counts from now). A write lease
 * downgrading to read was broken by a read open; one going away by a
 * write open, from a read lease if its fd is read-only (as CRIU).
 */
static long break_lease_again(const struct rst_file_lock *l)
{
	char path[32] = "/proc/self/fd/";
	char digits[12];
	int n = 0, k = 14, held, opened;
	long ret = sys2(NR_fcntl, l->fd, F_GETFL);

	if (ret < 0)
		return ret;
	held = l->lease_break == RST_LEASE_BREAK_TO_READ || (ret & O_ACCMODE) != O_RDONLY ?
		       F_WRLCK : F_RDLCK;
	ret = sys3(NR_fcntl, l->fd, F_SETLEASE, held);
	if (ret < 0)
		return ret;
	for (unsigned int v = (unsigned int)l->fd; n == 0 || v; v /= 10)
		digits[n++] = (char)('0' + v % 10);
	while (n)
		path[k++] = digits[--n];
	path[k] = 0;
	opened = sys4(NR_openat, AT_FDCWD, path,
		      (l->lease_break == RST_LEASE_BREAK_TO_READ ? O_RDONLY : O_WRONLY) |
			      O_NONBLOCK | O_CLOEXEC, 0);
	if (opened == -EAGAIN)
		return 0;
	if (opened >= 0) { /* nothing conflicted: the break did not start */
		sys1(NR_close, opened);
		return -EINVAL;
	}
	return opened;
}

long rst_take_file_locks(struct rst_task_args *a, const char **what)
{
	const struct rst_file_lock *l = (const struct rst_file_lock *)a->file_locks;

	for (uint32_t i = 0; i < a->nr_file_locks; i++, l++) {
		struct k_flock fl = { .type = l->write ? F_WRLCK : F_RDLCK, .whence = 0,
				      .start = l->start, .len = l->len };
		long ret;

		switch (l->kind) {
		case RST_LOCK_POSIX:
			*what = "taking a POSIX file lock again";
			ret = sys3(NR_fcntl, l->fd, F_SETLK, &fl);
			break;
		case RST_LOCK_OFD:
			*what = "taking an OFD file lock again";
			ret = sys3(NR_fcntl, l->fd, F_OFD_SETLK, &fl);
			break;
		case RST_LOCK_FLOCK:
			*what = "taking a flock again";
			ret = sys2(NR_flock, l->fd, (l->write ? LOCK_EX : LOCK_SH) | LOCK_NB);
			break;
		default:
			if (l->lease_break != RST_LEASE_HELD) {
				*what = "breaking a lease again";
				ret = break_lease_again(l);
				break;
			}
			*what = "taking a lease again";
			ret = sys3(NR_fcntl, l->fd, F_SETLEASE, l->write ? F_WRLCK : F_RDLCK);
			break;
		}
		if (ret < 0)
			return ret;
	}
	return 0;
}
