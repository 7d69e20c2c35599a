// SPDX-License-Identifier: GPL-2.0
/*
 * fanotify: a group (FAN_CLASS_NOTIF, non-blocking) with an inode mark on
 * a file (FAN_MODIFY), an inode mark with an ignored mask on another, and
 * a mount mark on the test directory's mount. After the restore fdinfo
 * shows the same flags and marks (masks, ignored masks, mark kinds), and
 * a write to the first file is reported with an fd on that file.
 */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/fanotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "zdtm.h"

/* fdinfo's "fanotify" lines, without the ones that change (ino, handle). */
static int marks(int fd, char *out, size_t len)
{
	char path[64], line[512];
	FILE *f;
	size_t n = 0;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "r");
	if (!f)
		return -1;
	out[0] = '\0';
	while (fgets(line, sizeof(line), f)) {
		char *cut = strstr(line, "fhandle-bytes");

		if (strncmp(line, "fanotify", 8))
			continue;
		if (cut)
			strcpy(cut, "\n");
		n += snprintf(out + n, len - n, "%s", line);
	}
	fclose(f);
	return 0;
}

int main(int argc, char **argv)
{
	char before[2048], after[2048], buf[4096], link[PATH_MAX], want[PATH_MAX], proc[64];
	int fan, fd, found = 0;
	ssize_t n;

	test_init(argc, argv);
	close(open("fan_watched", O_CREAT | O_WRONLY, 0644));
	close(open("fan_ignored", O_CREAT | O_WRONLY, 0644));
	fan = fanotify_init(FAN_CLASS_NOTIF | FAN_NONBLOCK, O_RDONLY);
	if (fan < 0)
		return fail_errno("fanotify_init"), 1;
	if (fanotify_mark(fan, FAN_MARK_ADD, FAN_MODIFY, AT_FDCWD, "fan_watched") ||
	    fanotify_mark(fan, FAN_MARK_ADD, FAN_CLOSE_WRITE, AT_FDCWD, "fan_ignored") ||
	    fanotify_mark(fan, FAN_MARK_ADD | FAN_MARK_IGNORED_MASK | FAN_MARK_IGNORED_SURV_MODIFY,
			  FAN_MODIFY, AT_FDCWD, "fan_ignored") ||
	    fanotify_mark(fan, FAN_MARK_ADD | FAN_MARK_MOUNT, FAN_CLOSE_NOWRITE, AT_FDCWD, "."))
		return fail_errno("fanotify_mark"), 1;
	if (marks(fan, before, sizeof(before)) || !realpath("fan_watched", want))
		return fail_errno("fdinfo"), 1;
	while (read(fan, buf, sizeof(buf)) > 0) /* what the mount mark saw so far */
		;
	test_daemon();
	test_waitsig();

	if (marks(fan, after, sizeof(after)) || strcmp(before, after))
		return fail("fanotify marks differ:\n%s---\n%s", before, after), 1;
	fd = open("fan_watched", O_WRONLY);
	if (fd < 0 || write(fd, "x", 1) != 1)
		return fail_errno("write"), 1;
	close(fd);
	while ((n = read(fan, buf, sizeof(buf))) > 0) {
		struct fanotify_event_metadata *ev = (void *)buf;

		for (; FAN_EVENT_OK(ev, n); ev = FAN_EVENT_NEXT(ev, n)) {
			ssize_t l;

			if (ev->fd < 0)
				continue;
			snprintf(proc, sizeof(proc), "/proc/self/fd/%d", ev->fd);
			l = readlink(proc, link, sizeof(link) - 1);
			if (l > 0 && (link[l] = '\0', !strcmp(link, want)) && ev->mask & FAN_MODIFY)
				found = 1;
			close(ev->fd);
		}
	}
	if (!found)
		return fail("no FAN_MODIFY for the marked file after the restore"), 1;
	pass();
	return 0;
}
