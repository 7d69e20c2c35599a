// SPDX-License-Identifier: GPL-2.0
/*
 * inotify: watches on a directory (wd 1) and a file in it (wd 3; wd 2
 * was removed before the dump) keep their wds and masks: after the
 * restore a file created in the directory and a write to the file are
 * reported with the right wd, and nothing else is queued.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "zdtm.h"

static int next(int fd, struct inotify_event *ev, size_t len)
{
	return read(fd, ev, len) > 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
	char buf[4096] __attribute__((aligned(8)));
	struct inotify_event *ev = (void *)buf;
	int in, f, w1, w2, w3;

	test_init(argc, argv);
	if (mkdir("watched", 0700) || (f = open("watched/file", O_RDWR | O_CREAT, 0600)) < 0)
		return fail_errno("setup"), 1;
	in = inotify_init1(IN_NONBLOCK);
	w1 = inotify_add_watch(in, "watched", IN_CREATE | IN_DELETE);
	w2 = inotify_add_watch(in, ".", IN_ALL_EVENTS);
	w3 = inotify_add_watch(in, "watched/file", IN_MODIFY);
	if (in < 0 || w1 != 1 || w2 != 2 || w3 != 3 || inotify_rm_watch(in, w2))
		return fail_errno("inotify: wds %d %d %d", w1, w2, w3), 1;
	while (read(in, buf, sizeof(buf)) > 0)
		; /* IN_IGNORED of wd 2 */
	test_daemon();
	test_waitsig();

	if (!(fcntl(in, F_GETFL) & O_NONBLOCK))
		return fail("O_NONBLOCK lost"), 1;
	if (next(in, ev, sizeof(buf)) == 0)
		return fail("an event queued after restore: wd %d mask %#x", ev->wd, ev->mask), 1;
	close(open("watched/new", O_CREAT | O_RDONLY, 0600));
	if (next(in, ev, sizeof(buf)) || ev->wd != 1 || !(ev->mask & IN_CREATE) ||
	    strcmp(ev->name, "new"))
		return fail("no IN_CREATE on wd 1"), 1;
	if (write(f, "x", 1) != 1 || next(in, ev, sizeof(buf)) || ev->wd != 3 ||
	    !(ev->mask & IN_MODIFY))
		return fail("no IN_MODIFY on wd 3"), 1;
	if (inotify_rm_watch(in, 2) == 0 || errno != EINVAL)
		return fail("wd 2 exists again"), 1;
	if (inotify_add_watch(in, "watched", IN_CREATE | IN_DELETE) != 1)
		return fail("the directory's watch is not wd 1"), 1;
	pass();
	return 0;
}
