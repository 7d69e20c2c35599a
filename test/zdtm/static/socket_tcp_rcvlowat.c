// SPDX-License-Identifier: GPL-2.0
/*
 * SO_RCVLOWAT above half the receive buffer (--tcp-established). The
 * kernel caps a TCP socket's low-water mark at half a locked receive
 * buffer, and grows an unlocked one for it, so such a mark is only had
 * by setting it first and the buffer after: a listener and a connecting
 * end whose buffers stay locked, an accepted end unlocked again
 * (SO_BUF_LOCK 0), and a UDP socket and a unix socketpair, whose marks
 * the kernel only stores. After the restore each has the same receive
 * buffer, mark and lock bits, and the connecting end's mark still holds
 * back poll() for a few bytes.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "zdtm.h"

#ifndef SO_BUF_LOCK
#define SO_BUF_LOCK 72
#endif

#define NR_SKS 5

static const char *const names[NR_SKS] = { "listener", "connecting end", "accepted end",
					   "udp", "unix" };

struct rcv_state {
	int rcvbuf, rcvlowat, lock;
};

static int get_int(int sk, int opt)
{
	socklen_t l = sizeof(int);
	int v = -1;

	getsockopt(sk, SOL_SOCKET, opt, &v, &l);
	return v;
}

static int seti(int sk, int opt, const char *name, int v)
{
	if (setsockopt(sk, SOL_SOCKET, opt, &v, sizeof(v)))
		return fail_errno("setsockopt %s %d", name, v), -1;
	return 0;
}

/* The mark first (an unlocked buffer grows for it), then the buffer's size. */
static int set_mark_then_buf(int sk, int lowat, int rcvbuf)
{
	return seti(sk, SO_RCVLOWAT, "SO_RCVLOWAT", lowat) ||
	       seti(sk, SO_RCVBUF, "SO_RCVBUF", rcvbuf);
}

static void read_state(const int *sks, struct rcv_state *st)
{
	for (int i = 0; i < NR_SKS; i++)
		st[i] = (struct rcv_state){ get_int(sks[i], SO_RCVBUF),
					    get_int(sks[i], SO_RCVLOWAT),
					    get_int(sks[i], SO_BUF_LOCK) };
}

int main(int argc, char **argv)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	struct rcv_state want[NR_SKS], got[NR_SKS];
	int sks[NR_SKS], us[2], l, c, a, u;
	struct pollfd p;
	char buf[16];

	test_init(argc, argv);
	l = socket(AF_INET, SOCK_STREAM, 0);
	c = socket(AF_INET, SOCK_STREAM, 0);
	u = socket(AF_INET, SOCK_DGRAM, 0);
	if (l < 0 || c < 0 || u < 0 || socketpair(AF_UNIX, SOCK_STREAM, 0, us))
		return fail_errno("socket"), 1;
	if (set_mark_then_buf(l, 30000, 20000) || set_mark_then_buf(c, 30000, 20000) ||
	    seti(c, SO_SNDBUF, "SO_SNDBUF", 50000) ||
	    seti(u, SO_RCVBUF, "SO_RCVBUF", 20000) || seti(u, SO_RCVLOWAT, "SO_RCVLOWAT", 30000) ||
	    seti(us[0], SO_RCVBUF, "SO_RCVBUF", 20000) ||
	    seti(us[0], SO_RCVLOWAT, "SO_RCVLOWAT", 30000))
		return 1;
	if (bind(l, (void *)&sa, sizeof(sa)) || getsockname(l, (void *)&sa, &len) || listen(l, 4))
		return fail_errno("listener"), 1;
	if (connect(c, (void *)&sa, sizeof(sa)))
		return fail_errno("connect"), 1;
	a = accept(l, NULL, NULL);
	if (a < 0)
		return fail_errno("accept"), 1;
	/*
	 * It inherits the listener's lock: unlocked for the mark, and again
	 * after the size (which stays until autotuning moves it: no data here).
	 */
	if (seti(a, SO_BUF_LOCK, "SO_BUF_LOCK", 0) || set_mark_then_buf(a, 50000, 30000) ||
	    seti(a, SO_BUF_LOCK, "SO_BUF_LOCK", 0))
		return 1;
	sks[0] = l, sks[1] = c, sks[2] = a, sks[3] = u, sks[4] = us[0];
	read_state(sks, want);
	for (int i = 0; i < NR_SKS; i++) {
		test_msg("%s: SO_RCVBUF %d SO_RCVLOWAT %d SO_BUF_LOCK %d\n", names[i],
			 want[i].rcvbuf, want[i].rcvlowat, want[i].lock);
		/* else this kernel cannot make the case the test is about */
		if (want[i].rcvlowat <= want[i].rcvbuf / 2)
			test_skip("%s: SO_RCVLOWAT %d not above half SO_RCVBUF %d", names[i],
				  want[i].rcvlowat, want[i].rcvbuf);
	}
	test_daemon();
	test_waitsig();

	read_state(sks, got);
	for (int i = 0; i < NR_SKS; i++)
		if (got[i].rcvbuf != want[i].rcvbuf || got[i].rcvlowat != want[i].rcvlowat ||
		    got[i].lock != want[i].lock)
			return fail("%s: SO_RCVBUF %d SO_RCVLOWAT %d SO_BUF_LOCK %d, want %d %d %d",
				    names[i], got[i].rcvbuf, got[i].rcvlowat, got[i].lock,
				    want[i].rcvbuf, want[i].rcvlowat, want[i].lock),
			       1;
	/* a few bytes are below the connecting end's mark: not readable yet */
	if (write(a, "lowat", 5) != 5)
		return fail_errno("write"), 1;
	p = (struct pollfd){ .fd = c, .events = POLLIN };
	if (poll(&p, 1, 200) != 0)
		return fail("5 bytes made the connecting end readable (SO_RCVLOWAT %d)",
			    got[1].rcvlowat), 1;
	if (recv(c, buf, sizeof(buf), MSG_DONTWAIT) != 5)
		return fail_errno("the 5 bytes are not there"), 1;
	pass();
	return 0;
}
