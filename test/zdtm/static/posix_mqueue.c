// SPDX-License-Identifier: GPL-2.0
/*
 * POSIX message queues. In an IPC namespace of the test's own (it
 * unshares one before test_daemon, unless --in-ns=1: started by `unshare
 * --ipc`), or in amber's with --host=1:
 *   A "/zdtm_mq_a": 8 messages of 100 bytes, mode 0640, six messages of
 *     four priorities queued; held by a read-write descriptor and by a
 *     second, read-only and O_NONBLOCK one
 *   B "/zdtm_mq_b" (own namespace only): two messages, held by no one
 *   C "/zdtm_mq_c": unlinked while open through two descriptions (read-
 *     write, and write-only O_NONBLOCK), three messages
 * A child inherits every descriptor: each stays one description shared
 * with the parent (O_NONBLOCK cleared by the parent shows in the child's).
 * After restore: the same queues with the same sizes, mode and messages,
 * received in the same order (priority, then age); the descriptors keep
 * their access modes, O_NONBLOCK and FD_CLOEXEC, and are of one queue.
 * C is still unlinked, one queue behind both its descriptors.
 */
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "zdtm.h"

#define A_NAME "/zdtm_mq_a"
#define B_NAME "/zdtm_mq_b"
#define C_NAME "/zdtm_mq_c"
#define A_SIZE 100

static const struct { unsigned prio; const char *text; } a_msgs[] = {
	{ 1, "low" }, { 9, "high" }, { 5, "mid" }, { 9, "high, second" }, { 0, "zero" },
	{ 5, NULL /* A_SIZE bytes */ },
};
/* The order they come out in: priority, then age. */
static const int a_order[] = { 1, 3, 2, 5, 0, 4 };
static char big[A_SIZE];

static int send_all(mqd_t q)
{
	for (size_t i = 0; i < sizeof(a_msgs) / sizeof(a_msgs[0]); i++) {
		const char *t = a_msgs[i].text ? a_msgs[i].text : big;
		size_t len = a_msgs[i].text ? strlen(t) + 1 : A_SIZE;

		if (mq_send(q, t, len, a_msgs[i].prio))
			return -1;
	}
	return 0;
}

static int check_attr(mqd_t q, const char *what, long flags, long maxmsg, long size, long cur)
{
	struct mq_attr at;

	if (mq_getattr(q, &at))
		return fail("%s: mq_getattr: %m", what), -1;
	if (at.mq_flags != flags || at.mq_maxmsg != maxmsg || at.mq_msgsize != size ||
	    at.mq_curmsgs != cur)
		return fail("%s: flags %#lx maxmsg %ld msgsize %ld curmsgs %ld, not %#lx %ld %ld %ld",
			    what, at.mq_flags, at.mq_maxmsg, at.mq_msgsize, at.mq_curmsgs, flags,
			    maxmsg, size, cur), -1;
	return 0;
}

static int check_fd(mqd_t q, const char *what, int acc, mode_t mode)
{
	int fl = fcntl(q, F_GETFL), fd = fcntl(q, F_GETFD);
	struct stat st;

	if (fl < 0 || fd < 0 || fstat(q, &st))
		return fail("%s: %m", what), -1;
	if ((fl & O_ACCMODE) != acc || !(fd & FD_CLOEXEC) || (st.st_mode & 07777) != mode)
		return fail("%s: access %#o, fd flags %#x, mode %#o", what, fl & O_ACCMODE, fd,
			    st.st_mode & 07777), -1;
	return 0;
}

static int check_a(mqd_t rw, mqd_t ro)
{
	char buf[A_SIZE];
	unsigned prio;

	if (check_attr(rw, "A", 0, 8, A_SIZE, 6) || check_attr(ro, "A (second fd)", O_NONBLOCK,
								 8, A_SIZE, 6) ||
	    check_fd(rw, "A", O_RDWR, 0640) || check_fd(ro, "A (second fd)", O_RDONLY, 0640))
		return -1;
	for (size_t i = 0; i < sizeof(a_order) / sizeof(a_order[0]); i++) {
		int k = a_order[i];
		const char *t = a_msgs[k].text ? a_msgs[k].text : big;
		size_t len = a_msgs[k].text ? strlen(t) + 1 : A_SIZE;
		ssize_t n = mq_receive(ro, buf, sizeof(buf), &prio);

		if (n != (ssize_t)len || prio != a_msgs[k].prio || memcmp(buf, t, len))
			return fail("A: message %zu is %zd bytes of priority %u, not message %d",
				    i, n, prio, k), -1;
	}
	if (mq_receive(ro, buf, sizeof(buf), &prio) != -1 || errno != EAGAIN)
		return fail("A: a seventh message, or the second fd blocks"), -1;
	/* One queue behind both. */
	if (mq_send(rw, "ping", 5, 3) || mq_receive(ro, buf, sizeof(buf), &prio) != 5 ||
	    prio != 3 || strcmp(buf, "ping"))
		return fail("A: the two fds are not of one queue"), -1;
	return 0;
}

static int check_b(void)
{
	mqd_t q = mq_open(B_NAME, O_RDONLY | O_NONBLOCK);
	char buf[16];
	unsigned prio;

	if (q < 0)
		return fail("B: %m"), -1;
	if (check_attr(q, "B", O_NONBLOCK, 3, 16, 2) || check_fd(q, "B", O_RDONLY, 0600))
		return -1;
	if (mq_receive(q, buf, sizeof(buf), &prio) != 4 || prio != 2 || strcmp(buf, "two") ||
	    mq_receive(q, buf, sizeof(buf), &prio) != 4 || prio != 0 || strcmp(buf, "one"))
		return fail("B: its messages are not back"), -1;
	mq_close(q);
	return 0;
}

/* The child: once the parent has cleared O_NONBLOCK on ro, its ro shows it. */
static int child(int go, mqd_t ro)
{
	char c;

	if (read(go, &c, 1) != 1)
		return 2;
	return (fcntl(ro, F_GETFL) & O_NONBLOCK) ? 1 : 0;
}

static int check_c(mqd_t rw, mqd_t wo)
{
	static const char *const want[] = { "c-first", "c-third", "c-second" };
	char buf[16];
	unsigned prio;

	if (check_attr(rw, "C", 0, 3, 16, 3) || check_attr(wo, "C (second fd)", O_NONBLOCK, 3,
							     16, 3) ||
	    check_fd(rw, "C", O_RDWR, 0604) || check_fd(wo, "C (second fd)", O_WRONLY, 0604))
		return -1;
	if (mq_open(C_NAME, O_RDONLY) >= 0 || errno != ENOENT)
		return fail("C: its name is back"), -1;
	for (int i = 0; i < 3; i++)
		if (mq_receive(rw, buf, sizeof(buf), &prio) < 0 || strcmp(buf, want[i]))
			return fail("C: message %d is not %s", i, want[i]), -1;
	if (mq_send(wo, "c-again", 8, 0) || mq_receive(rw, buf, sizeof(buf), &prio) != 8)
		return fail("C: the two fds are not of one queue"), -1;
	return 0;
}

int main(int argc, char **argv)
{
	struct mq_attr a_attr = { .mq_maxmsg = 8, .mq_msgsize = A_SIZE };
	struct mq_attr b_attr = { .mq_maxmsg = 3, .mq_msgsize = 16 };
	int host, own;
	mqd_t rw, ro, b, c_rw, c_wo;
	int go[2], status;
	pid_t kid;

	test_init(argc, argv);
	host = test_opt("host") != NULL;
	own = !host && !test_opt("in-ns");
	if (own && unshare(CLONE_NEWIPC))
		return fail("unshare(CLONE_NEWIPC): %m"), 1;
	if (host)
		mq_unlink(A_NAME); /* a killed run's */
	for (int i = 0; i < A_SIZE; i++)
		big[i] = 'a' + i % 26;
	umask(0);
	rw = mq_open(A_NAME, O_CREAT | O_EXCL | O_RDWR, 0640, &a_attr);
	ro = mq_open(A_NAME, O_RDONLY | O_NONBLOCK);
	if (rw < 0 || ro < 0 || send_all(rw))
		return fail("queue A: %m"), 1;
	if (!host) {
		b = mq_open(B_NAME, O_CREAT | O_EXCL | O_WRONLY, 0600, &b_attr);
		if (b < 0 || mq_send(b, "one", 4, 0) || mq_send(b, "two", 4, 2) || mq_close(b))
			return fail("queue B: %m"), 1;
	}
	if (host)
		mq_unlink(C_NAME);
	c_rw = mq_open(C_NAME, O_CREAT | O_EXCL | O_RDWR, 0604, &b_attr);
	c_wo = mq_open(C_NAME, O_WRONLY | O_NONBLOCK);
	if (c_rw < 0 || c_wo < 0 || mq_send(c_wo, "c-first", 8, 4) ||
	    mq_send(c_rw, "c-second", 9, 1) || mq_send(c_wo, "c-third", 8, 4) || mq_unlink(C_NAME))
		return fail("queue C: %m"), 1;

	if (pipe(go))
		return fail("pipe: %m"), 1;
	kid = fork();
	if (kid < 0)
		return fail("fork: %m"), 1;
	if (kid == 0) {
		close(go[1]);
		_exit(child(go[0], ro));
	}
	close(go[0]);
	/* The tree is ready once the child's fd table is final: its copy of go[1] closed. */
	for (;;) {
		char fd_path[64];

		snprintf(fd_path, sizeof(fd_path), "/proc/%d/fd/%d", kid, go[1]);
		if (access(fd_path, F_OK))
			break;
		usleep(1000);
	}

	test_daemon();
	test_waitsig();

	if (check_a(rw, ro) || (!host && check_b()) || check_c(c_rw, c_wo))
		return 1;
	if (fcntl(ro, F_SETFL, 0) || write(go[1], "g", 1) != 1 || waitpid(kid, &status, 0) != kid)
		return fail("the child: %m"), 1;
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		return fail("the child's descriptor is not the parent's (status %#x)", status), 1;
	if (host && mq_unlink(A_NAME))
		return fail("mq_unlink A: %m"), 1;
	pass();
	return 0;
}
