// SPDX-License-Identifier: GPL-2.0
/*
 * Established TCP connections with both ends in the task (--tcp-established),
 * over IPv4, IPv6 and a v4-mapped dual-stack socket: data written before the
 * dump and not yet read, in both directions and more than a window's worth
 * one way, arrives whole and in order after the restore; the connections
 * then carry new data both ways; the listener still accepts; TCP_NODELAY
 * survives.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "zdtm.h"

#define BIG (1 << 20) /* more than fits in flight: part stays unsent */

struct conn {
	const char *name;
	int lsk, a, c; /* listener, accepted end, connecting end */
};

static unsigned char pattern(size_t i)
{
	return (unsigned char)(i * 7 + (i >> 9));
}

static int open_conn(struct conn *k, int family, const char *listen_on, const char *connect_to)
{
	struct sockaddr_storage ss = {};
	socklen_t l;
	int one = 1;

	k->lsk = socket(family, SOCK_STREAM, 0);
	if (k->lsk < 0)
		return -1;
	if (family == AF_INET) {
		struct sockaddr_in *a = (void *)&ss;

		a->sin_family = AF_INET;
		inet_pton(AF_INET, listen_on, &a->sin_addr);
		l = sizeof(*a);
	} else {
		struct sockaddr_in6 *a = (void *)&ss;
		int off = 0;

		setsockopt(k->lsk, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off));
		a->sin6_family = AF_INET6;
		inet_pton(AF_INET6, listen_on, &a->sin6_addr);
		l = sizeof(*a);
	}
	if (bind(k->lsk, (void *)&ss, l) || listen(k->lsk, 8) ||
	    getsockname(k->lsk, (void *)&ss, &l))
		return -1;
	if (connect_to) { /* an IPv4 client of a dual-stack listener */
		struct sockaddr_in a = { .sin_family = AF_INET,
					 .sin_port = ((struct sockaddr_in6 *)&ss)->sin6_port };

		inet_pton(AF_INET, connect_to, &a.sin_addr);
		k->c = socket(AF_INET, SOCK_STREAM, 0);
		if (k->c < 0 || connect(k->c, (void *)&a, sizeof(a)))
			return -1;
	} else {
		k->c = socket(family, SOCK_STREAM, 0);
		if (k->c < 0 || connect(k->c, (void *)&ss, l))
			return -1;
	}
	k->a = accept(k->lsk, NULL, NULL);
	if (k->a < 0)
		return -1;
	return setsockopt(k->c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* Reads exactly @len bytes of the pattern from @off on, within 30 s. */
static int read_pattern(int sk, size_t off, size_t len)
{
	static unsigned char buf[65536];

	while (len) {
		struct pollfd p = { sk, POLLIN, 0 };
		ssize_t n;

		if (poll(&p, 1, 30000) != 1)
			return fail("no data for 30 s, %zu bytes missing", len), -1;
		n = read(sk, buf, len < sizeof(buf) ? len : sizeof(buf));
		if (n <= 0)
			return fail_errno("read (%zu bytes missing)", len), -1;
		for (ssize_t i = 0; i < n; i++)
			if (buf[i] != pattern(off + i))
				return fail("byte %zu differs", off + i), -1;
		off += n;
		len -= n;
	}
	return 0;
}

/* Writes @len bytes of the pattern from @off on, without blocking past what fits. */
static ssize_t write_pattern(int sk, size_t off, size_t len, int flags)
{
	static unsigned char buf[BIG];
	size_t done = 0;

	for (size_t i = 0; i < len; i++)
		buf[i] = pattern(off + i);
	while (done < len) {
		ssize_t n = send(sk, buf + done, len - done, flags);

		if (n < 0)
			return flags ? (ssize_t)done : -1;
		done += n;
	}
	return done;
}

static int check_conn(struct conn *k, size_t c_sent, size_t a_sent)
{
	int v = 0;
	socklen_t l = sizeof(v);
	ssize_t rest;

	if (getsockopt(k->c, IPPROTO_TCP, TCP_NODELAY, &v, &l) || !v)
		return fail("%s: TCP_NODELAY lost", k->name), -1;
	/* what was queued at the dump */
	if (read_pattern(k->a, 0, c_sent))
		return -1;
	/* the rest of the big write goes now that the other end reads */
	rest = BIG - a_sent;
	if (fork() == 0)
		_exit(write_pattern(k->a, a_sent, rest, 0) != rest);
	if (read_pattern(k->c, 0, BIG))
		return -1;
	/* new data both ways */
	if (write_pattern(k->c, c_sent, 1000, 0) != 1000 || read_pattern(k->a, c_sent, 1000))
		return -1;
	return 0;
}

int main(int argc, char **argv)
{
	struct conn k[3] = { { .name = "ipv4" }, { .name = "ipv6" }, { .name = "v4-mapped" } };
	size_t c_sent = 5000, a_sent[3];
	int ret;

	test_init(argc, argv);
	if (open_conn(&k[0], AF_INET, "127.0.0.1", NULL) ||
	    open_conn(&k[1], AF_INET6, "::1", NULL) ||
	    open_conn(&k[2], AF_INET6, "::", "127.0.0.1"))
		return fail_errno("setting up the connections"), 1;
	for (int i = 0; i < 3; i++) {
		ssize_t n;

		if (write_pattern(k[i].c, 0, c_sent, 0) != (ssize_t)c_sent)
			return fail_errno("%s: write", k[i].name), 1;
		/* as much as the kernel takes: the peer's receive queue fills, ours too */
		n = write_pattern(k[i].a, 0, BIG, MSG_DONTWAIT);
		if (n <= 0)
			return fail_errno("%s: non-blocking write", k[i].name), 1;
		a_sent[i] = n;
	}
	test_daemon();
	test_waitsig();

	for (int i = 0; i < 3; i++) {
		int st;

		ret = check_conn(&k[i], c_sent, a_sent[i]);
		if (ret)
			return 1;
		if (wait(&st) < 0 || !WIFEXITED(st) || WEXITSTATUS(st))
			return fail("%s: the writer child failed", k[i].name), 1;
	}
	/* the listeners still accept */
	for (int i = 0; i < 2; i++) {
		struct sockaddr_storage ss;
		socklen_t l = sizeof(ss);
		int c = socket(i ? AF_INET6 : AF_INET, SOCK_STREAM, 0), a;

		if (getsockname(k[i].lsk, (void *)&ss, &l) || connect(c, (void *)&ss, l))
			return fail_errno("%s: connect after the restore", k[i].name), 1;
		a = accept(k[i].lsk, NULL, NULL);
		if (a < 0)
			return fail_errno("%s: accept after the restore", k[i].name), 1;
		close(a);
		close(c);
	}
	pass();
	return 0;
}
