// SPDX-License-Identifier: GPL-2.0
/*
 * The console or a virtual terminal held in the tree (built twice: tty_console
 * with -DTTY_CONSOLE, tty_vt without):
 *  - the root holds the device (the VT build: /dev/tty0, the current VT,
 *    read-only, and /dev/tty1 read-write, non-blocking) with a termios
 *    changed (VEOL2);
 *  - a child leads a session whose controlling terminal is the device.
 * After restore: the same devices (st_rdev), flags, termios (a VT's are
 * reset when its last file closes: the restore must set them again), and
 * the child's controlling terminal and foreground group.
 * Skips, with the reason, where the device cannot be opened or taken as a
 * controlling terminal (no VT console: ENXIO/EIO; not root: EACCES).
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "zdtm.h"

#ifdef TTY_CONSOLE
static const char *const paths[] = {"/dev/console"};
static const int oflags[] = {O_RDWR | O_NONBLOCK};
#define CTTY_PATH "/dev/console"
#else
static const char *const paths[] = {"/dev/tty0", "/dev/tty1"};
static const int oflags[] = {O_RDONLY, O_RDWR | O_NONBLOCK};
#define CTTY_PATH "/dev/tty1"
#endif
#define NR_FDS (int)(sizeof(paths) / sizeof(paths[0]))

struct held {
	int fd, flags;
	dev_t rdev;
	struct termios orig, set;
};

/* The session leader: CTTY_PATH as its terminal, itself in the foreground. */
static int ctty_child(int ready)
{
	unsigned int dev = 0, ctty_dev = 0;
	int fd, tty, err = 0;

	if (setsid() < 0)
		err = errno;
	fd = err ? -1 : open(CTTY_PATH, O_RDWR | O_NOCTTY);
	if (!err && (fd < 0 || ioctl(fd, TIOCSCTTY, 0)))
		err = errno;
	if (write(ready, &err, sizeof(err)) != sizeof(err) || err)
		return 1;
	close(ready);
	test_waitsig();
	if (tcgetsid(fd) != getpid() || tcgetpgrp(fd) != getpid())
		return 20;
	tty = open("/dev/tty", O_RDWR | O_NONBLOCK);
	if (tty < 0)
		return 21;
	if (ioctl(fd, TIOCGDEV, &dev) || ioctl(tty, TIOCGDEV, &ctty_dev) || dev != ctty_dev)
		return 22;
	return 0;
}

static int check(const struct held *h, int i)
{
	struct termios t;
	struct stat st;
	int flags = fcntl(h->fd, F_GETFL);

	if (fstat(h->fd, &st) || st.st_rdev != h->rdev)
		return fail("%s: not the same device after restore", paths[i]), 1;
	if (flags != h->flags)
		return fail("%s: flags %#o, were %#o", paths[i], flags, h->flags), 1;
	if (tcgetattr(h->fd, &t))
		return fail_errno("%s: tcgetattr", paths[i]), 1;
	if (t.c_iflag != h->set.c_iflag || t.c_oflag != h->set.c_oflag ||
	    t.c_cflag != h->set.c_cflag || t.c_lflag != h->set.c_lflag ||
	    memcmp(t.c_cc, h->set.c_cc, VEOL2 + 1))
		return fail("%s: termios changed (VEOL2 %d, was set to %d)", paths[i],
			    t.c_cc[VEOL2], h->set.c_cc[VEOL2]),
		       1;
	return 0;
}

int main(int argc, char **argv)
{
	struct held h[NR_FDS];
	int p[2], err = 0, st, ret = 0;
	pid_t child;

	test_init(argc, argv);
	for (int i = 0; i < NR_FDS; i++) {
		struct stat s;

		h[i].fd = open(paths[i], oflags[i] | O_NOCTTY);
		if (h[i].fd < 0 || tcgetattr(h[i].fd, &h[i].orig) || fstat(h[i].fd, &s))
			test_skip("%s: %s", paths[i], strerror(errno));
		h[i].rdev = s.st_rdev;
		h[i].flags = fcntl(h[i].fd, F_GETFL);
	}
	/* the last one's change is what every fd on that tty sees */
	for (int i = 0; i < NR_FDS; i++) {
		h[i].set = h[NR_FDS - 1].orig;
		h[i].set.c_cc[VEOL2] = h[i].orig.c_cc[VEOL2] == 'Q' ? 'R' : 'Q';
	}
	if (oflags[NR_FDS - 1] != O_RDONLY &&
	    tcsetattr(h[NR_FDS - 1].fd, TCSANOW, &h[NR_FDS - 1].set))
		test_skip("%s: tcsetattr: %s", paths[NR_FDS - 1], strerror(errno));
	for (int i = 0; i < NR_FDS - 1; i++)
		if (tcgetattr(h[i].fd, &h[i].set))
			test_skip("%s: tcgetattr: %s", paths[i], strerror(errno));
	if (pipe(p))
		return fail_errno("pipe"), 1;
	child = fork();
	if (child == 0) {
		close(p[0]);
		_exit(ctty_child(p[1]));
	}
	close(p[1]);
	if (read(p[0], &err, sizeof(err)) != sizeof(err) || err) {
		tcsetattr(h[NR_FDS - 1].fd, TCSANOW, &h[NR_FDS - 1].orig);
		waitpid(child, NULL, 0);
		test_skip("%s as a controlling terminal (TIOCSCTTY): %s", CTTY_PATH,
			  strerror(err));
	}
	close(p[0]);
	test_daemon();
	test_waitsig();

	for (int i = 0; i < NR_FDS && !ret; i++)
		ret = check(&h[i], i);
	/* the host's console keeps its termios after the last close: as they were */
	if (tcsetattr(h[NR_FDS - 1].fd, TCSANOW, &h[NR_FDS - 1].orig) && !ret) {
		fail_errno("%s: tcsetattr back", paths[NR_FDS - 1]);
		ret = 1;
	}
	/* the child's exit hangs its terminal up: our fds were checked first */
	kill(child, SIGTERM);
	if (waitpid(child, &st, 0) != child)
		return fail_errno("waitpid"), 1;
	if (ret)
		return 1;
	if (!WIFEXITED(st) || WEXITSTATUS(st))
		return fail("session child failed: %#x", st), 1;
	pass();
	return 0;
}
