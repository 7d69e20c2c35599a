// SPDX-License-Identifier: MIT
/*
 * The owner of an open file (F_SETOWN, F_SETSIG), as CRIU keeps it in a
 * fown_entry. amber does not restore an owner yet: at dump a file with an
 * owner or a signal set is refused, and at restore an image that names
 * one is refused, so that neither is ever dropped silently.
 */
#define LOG_PREFIX "files: "
#include <errno.h>
#include <fcntl.h>
#include <string.h>

#include "base/log.h"
#include "files/files_internal.h"

/* Fills @fown for @fd (the task's fd @d, grabbed); refuses a set owner. */
int files_dump_fown(const struct fd_desc *d, int fd, FownEntry *fown)
{
	struct f_owner_ex own = {};
	int sig = fcntl(fd, F_GETSIG);

	if (fcntl(fd, F_GETOWN_EX, &own) || sig < 0) {
		pr_perror("fd %d of pid %d: can't read the file owner", d->fd, d->pid);
		return -errno;
	}
	if (own.pid || sig) {
		pr_err("fd %d of pid %d: a file owner (F_SETOWN pid %d, F_SETSIG %d) is not supported yet\n",
		       d->fd, d->pid, own.pid, sig);
		return -ENOTSUP;
	}
	*fown = (FownEntry)FOWN_ENTRY__INIT;
	return 0;
}

/* An image's fown_entry: present, and naming no owner amber would drop. */
int files_check_fown(const FileEntry *fe, const FownEntry *fown)
{
	if (fown && !fown->pid && !fown->signum)
		return 0;
	pr_err("files.img: file %u (type %d) has a file owner: not supported yet\n", fe->id,
	       fe->type);
	return -EINVAL;
}

/* The value after @key in /proc/PID/fdinfo text @buf, or NULL. */
const char *files_fdinfo_field(const char *buf, const char *key)
{
	size_t n = strlen(key);

	for (const char *p = buf; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (!strncmp(p, key, n))
			return p + n;
	return NULL;
}
