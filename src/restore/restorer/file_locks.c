// SPDX-License-Identifier: MIT
/* File locks in the restorer (file_locks.h). Raw syscalls only. */
#include "file_locks.h"
#include "sys.h"

#define F_SETLK	    6
#define F_OFD_SETLK 37
#define F_SETLEASE  1024
#define F_RDLCK	    0
#define F_WRLCK	    1
#define LOCK_SH	    1
#define LOCK_EX	    2
#define LOCK_NB	    4

/* The kernel's struct flock on x86_64: 32 bytes. */
struct k_flock {
	int16_t type, whence;
	int32_t pad;
	int64_t start, len;
	int32_t pid, pad2;
};

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
			*what = "taking a lease again";
			ret = sys3(NR_fcntl, l->fd, F_SETLEASE, l->write ? F_WRLCK : F_RDLCK);
			break;
		}
		if (ret < 0)
			return ret;
	}
	return 0;
}
