// SPDX-License-Identifier: GPL-2.0
/*
 * Fds in flight (SCM_RIGHTS) in a stream and a dgram queue: a pipe's read
 * end the sender closed (its data and write end must still work), a file
 * the task still has open (one description: the offset is shared) and a
 * socket the sender closed (its twin must still reach it); and a socket
 * carried in its own queue.
 */
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "zdtm.h"

static int send_fds(int sk, const char *msg, int *fds, int n)
{
	char cbuf[CMSG_SPACE(3 * sizeof(int))] = {};
	struct iovec iov = { (void *)msg, strlen(msg) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			     .msg_controllen = CMSG_SPACE(n * sizeof(int)) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);

	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(n * sizeof(int));
	memcpy(CMSG_DATA(c), fds, n * sizeof(int));
	return sendmsg(sk, &mh, 0) == (ssize_t)strlen(msg) ? 0 : -1;
}

static int recv_fds(int sk, const char *msg, int *fds, int n)
{
	char cbuf[CMSG_SPACE(3 * sizeof(int))], buf[32] = {};
	struct iovec iov = { buf, sizeof(buf) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *c;

	if (recvmsg(sk, &mh, MSG_DONTWAIT) != (ssize_t)strlen(msg) || strcmp(buf, msg))
		return -1;
	c = CMSG_FIRSTHDR(&mh);
	if (!c || c->cmsg_type != SCM_RIGHTS || c->cmsg_len != CMSG_LEN(n * sizeof(int)))
		return -1;
	memcpy(fds, CMSG_DATA(c), n * sizeof(int));
	return 0;
}

int main(int argc, char **argv)
{
	int st[2], dg[2], p[2], other[2], file, got[4];
	struct stat a, b;
	char buf[16] = {};

	test_init(argc, argv);
	file = open("data", O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (file < 0 || write(file, "0123456789", 10) != 10 || lseek(file, 3, SEEK_SET) != 3)
		return fail_errno("file"), 1;
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, st) || socketpair(AF_UNIX, SOCK_DGRAM, 0, dg) ||
	    pipe(p) || socketpair(AF_UNIX, SOCK_STREAM, 0, other) || write(p[1], "piped", 5) != 5)
		return fail_errno("setup"), 1;
	/* Data after the fds: what precedes them in a stream goes with them. */
	if (send_fds(st[0], "with-fds", (int[]){ p[0], file }, 2) || send(st[0], "plain", 5, 0) != 5 ||
	    send_fds(dg[0], "dgram-fd", (int[]){ other[1] }, 1) ||
	    send_fds(dg[0], "itself", (int[]){ dg[1] }, 1))
		return fail_errno("sendmsg"), 1;
	close(p[0]);
	close(other[1]);
	test_daemon();
	test_waitsig();

	if (recv_fds(st[1], "with-fds", got, 2) || recv_fds(dg[1], "dgram-fd", got + 2, 1))
		return fail("messages with fds lost"), 1;
	if (recv_fds(dg[1], "itself", got + 3, 1) || fstat(got[3], &a) || fstat(dg[1], &b) ||
	    a.st_ino != b.st_ino)
		return fail("a socket carried in its own queue came back as another"), 1;
	if (recv(st[1], buf, sizeof(buf), 0) != 5 || memcmp(buf, "plain", 5))
		return fail("plain data after the fds lost"), 1;
	if (read(got[0], buf, 5) != 5 || memcmp(buf, "piped", 5) || write(p[1], "x", 1) != 1 ||
	    read(got[0], buf, 1) != 1 || buf[0] != 'x')
		return fail("the pipe in flight does not work"), 1;
	if (lseek(got[1], 0, SEEK_CUR) != 3 || lseek(file, 5, SEEK_SET) != 5 ||
	    lseek(got[1], 0, SEEK_CUR) != 5 || read(got[1], buf, 2) != 2 || memcmp(buf, "56", 2))
		return fail("the file in flight is not the task's description"), 1;
	if (send(other[0], "sk", 2, 0) != 2 || recv(got[2], buf, 2, 0) != 2 || memcmp(buf, "sk", 2))
		return fail("the socket in flight does not reach its twin"), 1;
	pass();
	return 0;
}
