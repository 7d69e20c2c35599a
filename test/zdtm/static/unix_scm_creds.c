// SPDX-License-Identifier: GPL-2.0
/*
 * SO_PASSCRED: queued messages keep their senders' credentials
 * (SCM_CREDENTIALS): the task itself, a child, and explicit uid/gid, in
 * a dgram queue and in a stream queue (which must not merge senders).
 */
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "zdtm.h"

static int send_cred(int sk, const char *msg, pid_t pid, uid_t uid)
{
	char cbuf[CMSG_SPACE(sizeof(struct ucred))] = {};
	struct ucred uc = { pid, uid, uid };
	struct iovec iov = { (void *)msg, strlen(msg) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);

	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_CREDENTIALS;
	c->cmsg_len = CMSG_LEN(sizeof(uc));
	memcpy(CMSG_DATA(c), &uc, sizeof(uc));
	return sendmsg(sk, &mh, 0) == (ssize_t)strlen(msg) ? 0 : -1;
}

static int recv_cred(int sk, const char *msg, pid_t pid, uid_t uid)
{
	char cbuf[CMSG_SPACE(sizeof(struct ucred))], buf[32] = {};
	struct iovec iov = { buf, sizeof(buf) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *c;
	struct ucred uc;

	if (recvmsg(sk, &mh, MSG_DONTWAIT) != (ssize_t)strlen(msg) || strcmp(buf, msg))
		return -1;
	c = CMSG_FIRSTHDR(&mh);
	if (!c || c->cmsg_type != SCM_CREDENTIALS)
		return -1;
	memcpy(&uc, CMSG_DATA(c), sizeof(uc));
	if (uc.pid != pid || uc.uid != uid || uc.gid != uid)
		return test_msg("%s: pid %d uid %d gid %d\n", msg, uc.pid, uc.uid, uc.gid), -1;
	return 0;
}

int main(int argc, char **argv)
{
	int dg[2], st[2], one = 1, ready[2];
	pid_t child;
	char c;

	test_init(argc, argv);
	if (socketpair(AF_UNIX, SOCK_DGRAM, 0, dg) || socketpair(AF_UNIX, SOCK_STREAM, 0, st) ||
	    setsockopt(dg[1], SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) ||
	    setsockopt(st[1], SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) || pipe(ready))
		return fail_errno("setup"), 1;
	child = fork();
	if (child == 0) {
		if (send(dg[0], "from-child", 10, 0) != 10 || send(st[0], "child", 5, 0) != 5)
			_exit(1);
		close(ready[1]);
		pause();
		_exit(0);
	}
	close(ready[1]);
	if (child < 0 || read(ready[0], &c, 1) != 0)
		return fail_errno("child"), 1;
	if (send(dg[0], "from-me", 7, 0) != 7 || send_cred(dg[0], "as-1000", getpid(), 1000) ||
	    send(st[0], "me", 2, 0) != 2)
		return fail_errno("send"), 1;
	test_daemon();
	test_waitsig();

	if (recv_cred(dg[1], "from-child", child, 0) || recv_cred(dg[1], "from-me", getpid(), 0) ||
	    recv_cred(dg[1], "as-1000", getpid(), 1000))
		return fail("dgram credentials differ after restore"), 1;
	if (recv_cred(st[1], "child", child, 0) || recv_cred(st[1], "me", getpid(), 0))
		return fail("stream credentials differ after restore"), 1;
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	pass();
	return 0;
}
