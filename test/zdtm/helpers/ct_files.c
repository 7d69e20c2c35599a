// SPDX-License-Identifier: MIT
/*
 * ct_files ROOT PARTS: a process in a mount namespace of its own (started
 * by `unshare -m --propagation private`) that pivot_root's into ROOT with
 * a tmpfs on /run, a proc on /proc and a devpts instance of its own on
 * /dev/pts, then holds, for each comma-separated part of PARTS:
 *
 *   unix  a stream listener on /run/srv.sock (owner 123:456, mode 0640)
 *         with one client accepted (data queued both ways) and one not
 *         yet; a dgram socket on /run/dg.sock with a datagram queued from
 *         a client bound to /run/dgc.sock and connected to it; a listener
 *         bound to /run/gone.sock, unlinked since;
 *   fifo  /run/fifo open read-write and read-only, "fifo-data" in it;
 *   pty   a pair from /dev/pts/ptmx (index 0), raw mode on the slave, a
 *         window size, "to-slave" written to the master and "to-master"
 *         to the slave, unread;
 *   epoll (with fifo and pty) an epoll watching the FIFO's read-only end
 *         and the pty master, both readable.
 *
 * Then it polls for /run/check (the test makes it from outside, after the
 * restore), checks that all of the above is as it was and works, writes
 * "PASS" or "FAIL: why" to /run/result and exits once /run/done is there. Everything it needs is
 * inside ROOT: it is linked statically.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

static char why[512] = "FAIL: a write failed";

static int fail(const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(why, sizeof(why), "FAIL: ");

	va_start(ap, fmt);
	vsnprintf(why + n, sizeof(why) - n, fmt, ap);
	va_end(ap);
	return -1;
}

static socklen_t addr_of(const char *path, struct sockaddr_un *a)
{
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	strncpy(a->sun_path, path, sizeof(a->sun_path) - 1);
	return offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1;
}

static int sk_bound(int type, const char *path)
{
	struct sockaddr_un a;
	socklen_t len = addr_of(path, &a);
	int sk = socket(AF_UNIX, type, 0);

	if (sk < 0 || bind(sk, (struct sockaddr *)&a, len))
		return -1;
	return sk;
}

static int sk_connect(int sk, const char *path)
{
	struct sockaddr_un a;
	socklen_t len = addr_of(path, &a);

	return connect(sk, (struct sockaddr *)&a, len);
}

/* @sk's own (or, @peer, its peer's) name is @path. */
static int name_is(int sk, bool peer, const char *path, const char *what)
{
	struct sockaddr_un a;
	socklen_t len = sizeof(a);
	int ret = peer ? getpeername(sk, (struct sockaddr *)&a, &len)
		       : getsockname(sk, (struct sockaddr *)&a, &len);

	if (ret)
		return fail("%s: getname: %s", what, strerror(errno));
	if (len <= offsetof(struct sockaddr_un, sun_path) || strcmp(a.sun_path, path))
		return fail("%s: named '%.*s', not %s", what,
			    (int)(len - offsetof(struct sockaddr_un, sun_path)), a.sun_path, path);
	return 0;
}

static int read_is(int fd, const char *want, const char *what)
{
	char buf[128];
	ssize_t n = read(fd, buf, sizeof(buf) - 1);

	if (n < 0)
		return fail("%s: read: %s", what, strerror(errno));
	buf[n] = '\0';
	if (strcmp(buf, want))
		return fail("%s: read '%s', not '%s'", what, buf, want);
	return 0;
}

static int write_all(int fd, const char *s)
{
	return write(fd, s, strlen(s)) == (ssize_t)strlen(s) ? 0 : -1;
}

/* The fds, as set up and checked. */
static int lsk, acc, cli, queued, dg, dgc, gone;
static int fifo_rw, fifo_rd;
static int ptm, pts;
static int ep;
static struct termios tio_set;

static int setup_unix(void)
{
	struct sockaddr_un a;
	socklen_t len = addr_of("/run/srv.sock", &a);

	lsk = sk_bound(SOCK_STREAM, "/run/srv.sock");
	if (lsk < 0 || chmod("/run/srv.sock", 0640) || chown("/run/srv.sock", 123, 456) ||
	    listen(lsk, 8))
		return -1;
	cli = socket(AF_UNIX, SOCK_STREAM, 0);
	if (cli < 0 || connect(cli, (struct sockaddr *)&a, len))
		return -1;
	acc = accept(lsk, NULL, NULL);
	queued = socket(AF_UNIX, SOCK_STREAM, 0);
	if (acc < 0 || queued < 0 || sk_connect(queued, "/run/srv.sock"))
		return -1;
	if (write_all(cli, "ping-from-cli") || write_all(acc, "pong"))
		return -1;
	dg = sk_bound(SOCK_DGRAM, "/run/dg.sock");
	dgc = sk_bound(SOCK_DGRAM, "/run/dgc.sock");
	if (dg < 0 || dgc < 0 || sk_connect(dgc, "/run/dg.sock") || write_all(dgc, "dg1"))
		return -1;
	gone = sk_bound(SOCK_STREAM, "/run/gone.sock");
	if (gone < 0 || listen(gone, 1) || unlink("/run/gone.sock"))
		return -1;
	return 0;
}

static int check_unix(void)
{
	struct sockaddr_un from;
	socklen_t flen = sizeof(from);
	struct stat st;
	char buf[64];
	int sk, a;

	if (stat("/run/srv.sock", &st))
		return fail("/run/srv.sock: %s", strerror(errno));
	if (!S_ISSOCK(st.st_mode) || (st.st_mode & 07777) != 0640 || st.st_uid != 123 ||
	    st.st_gid != 456)
		return fail("/run/srv.sock: mode %o owner %u:%u", st.st_mode, st.st_uid, st.st_gid);
	if (name_is(lsk, false, "/run/srv.sock", "listener") ||
	    name_is(acc, false, "/run/srv.sock", "accepted end") ||
	    name_is(cli, true, "/run/srv.sock", "client's peer") ||
	    name_is(queued, true, "/run/srv.sock", "queued client's peer"))
		return -1;
	if (read_is(acc, "ping-from-cli", "accepted end") || read_is(cli, "pong", "client"))
		return -1;
	if (write_all(cli, "again") || read_is(acc, "again", "accepted end, after"))
		return -1;
	/* the queued client, then a new one */
	a = accept4(lsk, NULL, NULL, SOCK_NONBLOCK);
	if (a < 0)
		return fail("the queued client was not there to accept: %s", strerror(errno));
	if (write_all(queued, "q") || read_is(a, "q", "queued client's accepted end"))
		return -1;
	sk = socket(AF_UNIX, SOCK_STREAM, 0);
	if (sk < 0 || sk_connect(sk, "/run/srv.sock"))
		return fail("a new client can't connect to /run/srv.sock: %s", strerror(errno));
	a = accept(lsk, NULL, NULL);
	if (a < 0 || write_all(a, "new") || read_is(sk, "new", "new client"))
		return -1;
	/* dgram */
	if (name_is(dg, false, "/run/dg.sock", "dgram server") ||
	    name_is(dgc, false, "/run/dgc.sock", "dgram client") ||
	    name_is(dgc, true, "/run/dg.sock", "dgram client's peer"))
		return -1;
	if (read_is(dg, "dg1", "dgram server") || write_all(dgc, "dg2"))
		return -1;
	memset(buf, 0, sizeof(buf));
	if (recvfrom(dg, buf, sizeof(buf) - 1, 0, (struct sockaddr *)&from, &flen) != 3 ||
	    strcmp(buf, "dg2") || strcmp(from.sun_path, "/run/dgc.sock"))
		return fail("dgram: got '%s' from '%s'", buf, from.sun_path);
	/* bound, then unlinked */
	if (name_is(gone, false, "/run/gone.sock", "unlinked listener"))
		return -1;
	if (!lstat("/run/gone.sock", &st))
		return fail("/run/gone.sock is back");
	return 0;
}

static int setup_fifo(void)
{
	if (mkfifo("/run/fifo", 0620) || chmod("/run/fifo", 0620))
		return -1;
	fifo_rw = open("/run/fifo", O_RDWR);
	fifo_rd = open("/run/fifo", O_RDONLY | O_NONBLOCK);
	return fifo_rw < 0 || fifo_rd < 0 ? -1 : write_all(fifo_rw, "fifo-data");
}

static int check_fifo(void)
{
	struct stat a, b;

	if (fstat(fifo_rw, &a) || stat("/run/fifo", &b))
		return fail("fifo: %s", strerror(errno));
	if (!S_ISFIFO(b.st_mode) || a.st_ino != b.st_ino || a.st_dev != b.st_dev ||
	    (b.st_mode & 07777) != 0620)
		return fail("fifo: fd is %lu, /run/fifo %lu mode %o", (unsigned long)a.st_ino,
			    (unsigned long)b.st_ino, b.st_mode);
	if (read_is(fifo_rd, "fifo-data", "fifo"))
		return -1;
	if (write_all(fifo_rw, "more") || read_is(fifo_rd, "more", "fifo, after"))
		return -1;
	return 0;
}

static int setup_pty(void)
{
	struct winsize ws = { .ws_row = 33, .ws_col = 111 };
	int unlock = 0;

	ptm = open("/dev/pts/ptmx", O_RDWR | O_NOCTTY);
	if (ptm < 0 || ioctl(ptm, TIOCSPTLCK, &unlock))
		return -1;
	pts = open("/dev/pts/0", O_RDWR | O_NOCTTY);
	if (pts < 0 || tcgetattr(pts, &tio_set))
		return -1;
	cfmakeraw(&tio_set);
	if (tcsetattr(pts, TCSANOW, &tio_set) || ioctl(pts, TIOCSWINSZ, &ws))
		return -1;
	return write_all(ptm, "to-slave") || write_all(pts, "to-master");
}

static int check_pty(void)
{
	struct winsize ws;
	struct termios t;
	int idx = -1;

	if (ioctl(ptm, TIOCGPTN, &idx) || idx != 0)
		return fail("pty: index %d", idx);
	if (tcgetattr(pts, &t) || t.c_lflag != tio_set.c_lflag || t.c_iflag != tio_set.c_iflag ||
	    t.c_oflag != tio_set.c_oflag)
		return fail("pty: termios changed");
	if (ioctl(pts, TIOCGWINSZ, &ws) || ws.ws_row != 33 || ws.ws_col != 111)
		return fail("pty: window %ux%u", ws.ws_row, ws.ws_col);
	if (read_is(pts, "to-slave", "pty slave") || read_is(ptm, "to-master", "pty master"))
		return -1;
	if (write_all(ptm, "x") || read_is(pts, "x", "pty slave, after"))
		return -1;
	return 0;
}

static int setup_epoll(void)
{
	struct epoll_event a = { .events = EPOLLIN, .data.u64 = 1 };
	struct epoll_event b = { .events = EPOLLIN, .data.u64 = 2 };

	ep = epoll_create1(0);
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, fifo_rd, &a) ||
	    epoll_ctl(ep, EPOLL_CTL_ADD, ptm, &b))
		return -1;
	return 0;
}

/* Before the FIFO and the pty are read: both are readable. */
static int check_epoll(void)
{
	struct epoll_event ev[4];
	int n = epoll_wait(ep, ev, 4, 1000), seen = 0;

	for (int i = 0; i < n; i++)
		if (ev[i].events & EPOLLIN)
			seen |= 1 << ev[i].data.u64;
	if (seen != 6)
		return fail("epoll: %d events, readable mask %#x, not the FIFO and the pty", n,
			    seen);
	return 0;
}

static int enter_root(const char *root)
{
	if (mount(root, root, NULL, MS_BIND, NULL) || chdir(root) ||
	    mount("t", "run", "tmpfs", 0, "mode=755") ||
	    mount("devpts", "dev/pts", "devpts", 0, "newinstance,ptmxmode=0666") ||
	    syscall(SYS_pivot_root, ".", "old") || chroot(".") || chdir("/") ||
	    umount2("/old", MNT_DETACH) || mount("proc", "/proc", "proc", 0, NULL))
		return -1;
	return 0;
}

int main(int argc, char **argv)
{
	bool with_unix, with_fifo, with_pty, with_epoll;
	const char *result;
	int ret = 0, fd;

	if (argc != 3)
		return 100;
	with_unix = strstr(argv[2], "unix");
	with_fifo = strstr(argv[2], "fifo");
	with_pty = strstr(argv[2], "pty");
	with_epoll = strstr(argv[2], "epoll") && with_fifo && with_pty;
	/* once inside, again from the root's own copy: the mappings are the root's */
	if (strcmp(argv[1], "-")) {
		if (enter_root(argv[1])) {
			perror("ct_files: entering the root");
			return 1;
		}
		execl("/ct_files", "/ct_files", "-", argv[2], (char *)NULL);
		perror("ct_files: exec /ct_files");
		return 1;
	}
	/* amber's stdio is not among these mounts */
	fd = open("/run/out", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || dup2(fd, 0) < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
		return 1;
	close(fd);
	if ((with_unix && setup_unix()) || (with_fifo && setup_fifo()) ||
	    (with_pty && setup_pty()) || (with_epoll && setup_epoll())) {
		perror("ct_files: setup");
		return 1;
	}
	fd = open("/run/ready", O_WRONLY | O_CREAT, 0644);
	close(fd);
	while (access("/run/check", F_OK))
		usleep(10000);
	if ((with_epoll && check_epoll()) || (with_unix && check_unix()) || (with_fifo && check_fifo()) ||
	    (with_pty && check_pty()))
		ret = -1;
	result = ret ? why : "PASS";
	fd = open("/run/result.tmp", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write_all(fd, result) || close(fd) || rename("/run/result.tmp", "/run/result"))
		return 1;
	/* /run goes with the namespace: until the test has read the result */
	while (access("/run/done", F_OK))
		usleep(10000);
	return ret ? 1 : 0;
}
