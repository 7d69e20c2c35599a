// SPDX-License-Identifier: GPL-2.0
/*
 * Pseudo-terminals held in the tree, as a terminal multiplexer holds them:
 *  - pair A: a child leads a session with A's slave as its controlling
 *    terminal, and a grandchild's group is the terminal's foreground group;
 *    A has custom termios (no echo, VMIN 3), a window size, and data queued
 *    in both directions at dump time;
 *  - pair B: the master in packet mode, its slave opened by the root;
 *  - pair C: a master left locked (no unlockpt), no slave open.
 * After restore: the same /dev/pts names, settings, session, foreground
 * group, lock and packet modes, and the queued data arrives once.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "zdtm.h"

static int open_master(int *index)
{
	int fd = posix_openpt(O_RDWR | O_NOCTTY);

	if (fd < 0 || ioctl(fd, TIOCGPTN, index))
		return -1;
	return fd;
}

static int open_slave(int master, int flags)
{
	char name[64];

	if (grantpt(master) || unlockpt(master) || ptsname_r(master, name, sizeof(name)))
		return -1;
	return open(name, flags);
}

/* Reads exactly @len bytes from @fd into @buf (blocking). */
static int read_all(int fd, char *buf, size_t len)
{
	size_t n = 0;

	while (n < len) {
		ssize_t r = read(fd, buf + n, len - n);

		if (r <= 0)
			return -1;
		n += r;
	}
	return 0;
}

/* The session leader of pair A's slave; @go: its parent's "checked" pipe. */
static int session_child(int slave_flags_fd, const char *slave_name, int ready)
{
	struct termios t;
	struct winsize ws = { .ws_row = 33, .ws_col = 77 };
	pid_t gc;
	int s, st;
	char buf[64];

	(void)slave_flags_fd;
	if (setsid() < 0)
		return 10;
	s = open(slave_name, O_RDWR); /* becomes the controlling terminal */
	if (s < 0)
		return 11;
	if (tcgetattr(s, &t))
		return 12;
	t.c_lflag &= ~ECHO;
	t.c_cc[VMIN] = 3;
	t.c_cc[VERASE] = 'X';
	if (tcsetattr(s, TCSANOW, &t) || ioctl(s, TIOCSWINSZ, &ws))
		return 13;
	gc = fork();
	if (gc == 0) {
		close(s);
		setpgid(0, 0);
		close(ready); /* last: the root's EOF on it means we are set up */
		test_waitsig();
		_exit(0);
	}
	setpgid(gc, gc);
	signal(SIGTTOU, SIG_IGN);
	if (tcsetpgrp(s, gc))
		return 14;
	/* queued for the master: written, not read before the dump */
	if (write(s, "to-master\n", 10) != 10)
		return 15;
	close(ready);
	test_waitsig();

	if (tcgetsid(s) != getpid() || tcgetpgrp(s) != gc)
		return 23;
	/* in the foreground again, to read (a background read is EIO: orphaned group) */
	if (tcsetpgrp(s, getpid()))
		return 19;
	/* queued for us: the root wrote "line1\n" before the dump */
	st = read(s, buf, sizeof(buf));
	if (st != 6 || memcmp(buf, "line1\n", 6)) {
		test_msg("session child read %d (%s): %.*s\n", st, strerror(errno), st > 0 ? st : 0, buf);
		return 20;
	}
	if (tcgetattr(s, &t) || (t.c_lflag & ECHO) || t.c_cc[VMIN] != 3 || t.c_cc[VERASE] != 'X')
		return 21;
	if (ioctl(s, TIOCGWINSZ, &ws) || ws.ws_row != 33 || ws.ws_col != 77)
		return 22;
	/* still our controlling terminal */
	st = open("/dev/tty", O_RDWR);
	if (st < 0)
		return 24;
	close(st);
	if (write(s, "after\n", 6) != 6)
		return 25;
	kill(gc, SIGTERM);
	if (waitpid(gc, &st, 0) != gc || !WIFEXITED(st) || WEXITSTATUS(st))
		return 26;
	return 0;
}

int main(int argc, char **argv)
{
	int ma, mb, mc, sb, ia, ib, ic, v = 0, st, p[2];
	char name_a[64], buf[64];
	pid_t child;

	test_init(argc, argv);
	ma = open_master(&ia);
	mb = open_master(&ib);
	mc = open_master(&ic);
	if (ma < 0 || mb < 0 || mc < 0)
		return fail_errno("posix_openpt"), 1;
	if (grantpt(ma) || unlockpt(ma) || ptsname_r(ma, name_a, sizeof(name_a)))
		return fail_errno("pty A"), 1;
	sb = open_slave(mb, O_RDWR | O_NOCTTY);
	if (sb < 0)
		return fail_errno("pty B slave"), 1;
	v = 1;
	if (ioctl(mb, TIOCPKT, &v))
		return fail_errno("TIOCPKT"), 1;
	if (pipe(p))
		return fail_errno("pipe"), 1;
	child = fork();
	if (child == 0) {
		close(p[0]);
		_exit(session_child(-1, name_a, p[1]));
	}
	close(p[1]);
	if (read(p[0], buf, 1) != 0)
		return fail("session child setup"), 1;
	close(p[0]);
	/* queued for the slave's reader: a line it reads after the restore */
	if (write(ma, "line1\n", 6) != 6)
		return fail_errno("write A"), 1;
	if (write(sb, "pkt", 3) != 3)
		return fail_errno("write B"), 1;
	test_daemon();
	test_waitsig();

	if (ptsname_r(ma, buf, sizeof(buf)) || strcmp(buf, name_a))
		return fail("pty A is %s, was %s", buf, name_a), 1;
	if (ioctl(mb, TIOCGPTN, &v) || v != ib || ioctl(mc, TIOCGPTN, &v) || v != ic)
		return fail("pty indexes changed"), 1;
	if (ioctl(mc, TIOCGPTLCK, &v) || v != 1)
		return fail("pty C is not locked any more"), 1;
	if (ioctl(mb, TIOCGPKT, &v) || v != 1)
		return fail("pty B left packet mode"), 1;
	/* pair B: packet mode, a status byte 0 then the data */
	if (read(mb, buf, sizeof(buf)) != 4 || memcmp(buf, "\0pkt", 4))
		return fail("pty B data"), 1;
	/* pair A: the child's line, output processing done once (\n -> \r\n) */
	if (read_all(ma, buf, 11) || memcmp(buf, "to-master\r\n", 11))
		return fail("pty A data before dump: %.11s", buf), 1;
	kill(child, SIGTERM);
	v = read_all(ma, buf, 7);
	if (waitpid(child, &st, 0) != child)
		return fail_errno("waitpid"), 1;
	if (!WIFEXITED(st) || WEXITSTATUS(st))
		return fail("session child failed: %#x", st), 1;
	if (v || memcmp(buf, "after\r\n", 7))
		return fail("pty A data after restore"), 1;
	pass();
	return 0;
}
