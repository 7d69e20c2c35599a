// SPDX-License-Identifier: GPL-2.0
/*
 * The console or a virtual terminal held in the tree (built three times:
 * tty_console with -DTTY_CONSOLE, tty_vt without, tty_dev_plain with
 * -DTTY_PLAIN):
 *  - the root holds the device (tty_vt: /dev/tty0, the current VT,
 *    read-only, and /dev/tty1 read-write, non-blocking; tty_dev_plain:
 *    /dev/console and /dev/tty1) with a termios changed (VEOL2);
 *  - a child leads a session whose controlling terminal is the device
 *    (not in tty_dev_plain: CRIU 4.2 saves the session of a terminal
 *    only when its first holder is in that session; test_interop.py).
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

#if defined(TTY_CONSOLE)
static const char *const paths[] = {"/dev/console"};
static const int oflags[] = {O_RDWR | O_NONBLOCK};
#define CTTY_PATH "/dev/console"
#elif defined(TTY_PLAIN)
static const char *const paths[] = {"/dev/console", "/dev/tty1"};
static const int oflags[] = {O_RDWR | O_NONBLOCK, O_RDWR};
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

#ifdef CTTY_PATH
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

/* Forks ctty_child(); its pid, or 0 with *err its setup's errno. */
static pid_t start_child(int *err)
{
	int p[2];
	pid_t child;
	char c;

	if (pipe(p))
		return fail_errno("pipe"), -1;
	child = fork();
	if (child == 0) {
		close(p[0]);
		_exit(ctty_child(p[1]));
	}
	close(p[1]);
	/* its errno, then EOF: the child closes its end after the write */
	if (read(p[0], err, sizeof(*err)) != sizeof(*err) || *err || read(p[0], &c, 1) != 0) {
		waitpid(child, NULL, 0);
		child = 0;
	}
	close(p[0]);
	return child;
}
#endif

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

/* Each device's VEOL2 changed: read back once all are set (tty0 and tty1 may be one tty). */
static void change_termios(struct held *h)
{
	for (int i = 0; i < NR_FDS; i++) {
		struct termios t = h[i].orig;

		if (tcgetattr(h[i].fd, &t))
			test_skip("%s: tcgetattr: %s", paths[i], strerror(errno));
		t.c_cc[VEOL2] = t.c_cc[VEOL2] == 'Q' ? 'R' : 'Q';
		if (tcsetattr(h[i].fd, TCSANOW, &t))
			test_skip("%s: tcsetattr: %s", paths[i], strerror(errno));
	}
	for (int i = 0; i < NR_FDS; i++)
		if (tcgetattr(h[i].fd, &h[i].set))
			test_skip("%s: tcgetattr: %s", paths[i], strerror(errno));
}

/* The host's console keeps its termios after the last close: as they were. */
static int restore_termios(const struct held *h)
{
	int ret = 0;

	for (int i = NR_FDS - 1; i >= 0; i--)
		if (tcsetattr(h[i].fd, TCSANOW, &h[i].orig)) {
			pr_perror("%s: tcsetattr back", paths[i]);
			ret = 1;
		}
	return ret;
}

int main(int argc, char **argv)
{
	struct held h[NR_FDS];
	int ret = 0;
#ifdef CTTY_PATH
	int err = 0, st;
	pid_t child;
#endif

	test_init(argc, argv);
	for (int i = 0; i < NR_FDS; i++) {
		struct stat s;

		h[i].fd = open(paths[i], oflags[i] | O_NOCTTY);
		if (h[i].fd < 0 || tcgetattr(h[i].fd, &h[i].orig) || fstat(h[i].fd, &s))
			test_skip("%s: %s", paths[i], strerror(errno));
		h[i].rdev = s.st_rdev;
		h[i].flags = fcntl(h[i].fd, F_GETFL);
	}
	change_termios(h);
#ifdef CTTY_PATH
	child = start_child(&err);
	if (child < 0)
		return 1;
	if (!child) {
		restore_termios(h);
		test_skip("%s as a controlling terminal (TIOCSCTTY): %s", CTTY_PATH,
			  strerror(err));
	}
#endif
	test_daemon();
	test_waitsig();

	for (int i = 0; i < NR_FDS && !ret; i++)
		ret = check(&h[i], i);
	if (restore_termios(h) && !ret) {
		fail("termios not set back");
		ret = 1;
	}
#ifdef CTTY_PATH
	/* the child's exit hangs its terminal up: our fds were checked first */
	kill(child, SIGTERM);
	if (waitpid(child, &st, 0) != child)
		return fail_errno("waitpid"), 1;
	if (!ret && (!WIFEXITED(st) || WEXITSTATUS(st)))
		return fail("session child failed: %#x", st), 1;
#endif
	if (ret)
		return 1;
	pass();
	return 0;
}
