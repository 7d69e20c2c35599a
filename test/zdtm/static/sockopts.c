// SPDX-License-Identifier: GPL-2.0
/*
 * Socket options survive, on UDP, TCP (listening and unbound), IPv6 and
 * unix sockets: SO_* (broadcast, keepalive, priority, mark, rcvlowat,
 * linger, timeouts, buffer sizes and their lock, passcred, oobinline,
 * bindtodevice, reuseaddr/reuseport), a classic BPF filter, IP_TOS,
 * IP_TTL, IP_PKTINFO, IP_FREEBIND, IPV6_TCLASS, IPV6_UNICAST_HOPS, TCP_NODELAY,
 * TCP_CORK and the keepalive timers. A socket whose buffer sizes were
 * never set must come back unlocked (still autotuned).
 *
 * amber skips at restore what a new socket has already: so options set
 * explicitly to a new socket's value (buffer sizes, which lock them; the
 * TTL; a keepalive timer), SO_BUF_LOCK with default sizes, a keepalive
 * interval without SO_KEEPALIVE, IPV6_V6ONLY, and SO_PRIORITY set after
 * IP_TOS (which sets the priority from the TOS) to 0 and to 2.
 */
#include <linux/filter.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "zdtm.h"

#ifndef SO_BUF_LOCK
#define SO_BUF_LOCK 72
#endif

struct opt {
	int sk, level, opt, len;
	const char *name;
	unsigned char want[64];
};

static struct opt opts[64];
static int nr_opts;

static int set(int sk, int level, int opt, const char *name, const void *v, int len)
{
	if (setsockopt(sk, level, opt, v, len))
		return fail_errno("setsockopt %s", name), -1;
	return 0;
}

static int seti(int sk, int level, int opt, const char *name, int v)
{
	return set(sk, level, opt, name, &v, sizeof(v));
}

/* Records the option's value as the kernel reports it now. */
static int watch(int sk, int level, int opt, const char *name)
{
	struct opt *o = &opts[nr_opts++];
	socklen_t l = sizeof(o->want);

	*o = (struct opt){ .sk = sk, .level = level, .opt = opt, .name = name };
	if (getsockopt(sk, level, opt, o->want, &l))
		return fail_errno("getsockopt %s", name), -1;
	o->len = l;
	return 0;
}

#define W(sk, lvl, opt) watch(sk, lvl, opt, #opt)

static int get_int(int sk, int level, int opt)
{
	socklen_t l = sizeof(int);
	int v = -1;

	getsockopt(sk, level, opt, &v, &l);
	return v;
}

/* Options at, or set explicitly to, a new socket's value; 0 or -1. */
static int defaults(void)
{
	int dflt = socket(AF_INET, SOCK_STREAM, 0), v6 = socket(AF_INET6, SOCK_DGRAM, 0);
	int p0 = socket(AF_INET, SOCK_DGRAM, 0), p2 = socket(AF_INET, SOCK_DGRAM, 0);
	int us[2], snd, rcv, usnd;

	if (dflt < 0 || v6 < 0 || p0 < 0 || p2 < 0 || socketpair(AF_UNIX, SOCK_STREAM, 0, us))
		return fail_errno("socket"), -1;
	snd = get_int(dflt, SOL_SOCKET, SO_SNDBUF);
	rcv = get_int(dflt, SOL_SOCKET, SO_RCVBUF);
	usnd = get_int(us[0], SOL_SOCKET, SO_SNDBUF);

	/* The kernel doubles what it is given: half the default sets the default, locked. */
	if (seti(dflt, SOL_SOCKET, SO_SNDBUF, "SO_SNDBUF", snd / 2) ||
	    seti(dflt, SOL_SOCKET, SO_RCVBUF, "SO_RCVBUF", rcv / 2) ||
	    seti(dflt, IPPROTO_IP, IP_TTL, "IP_TTL", get_int(dflt, IPPROTO_IP, IP_TTL)) ||
	    seti(dflt, IPPROTO_TCP, TCP_KEEPIDLE, "TCP_KEEPIDLE",
		 get_int(dflt, IPPROTO_TCP, TCP_KEEPIDLE)) ||
	    seti(dflt, IPPROTO_TCP, TCP_KEEPINTVL, "TCP_KEEPINTVL", 13) ||
	    seti(us[0], SOL_SOCKET, SO_SNDBUF, "SO_SNDBUF", usnd / 2) ||
	    seti(v6, IPPROTO_IPV6, IPV6_V6ONLY, "IPV6_V6ONLY", 1) ||
	    seti(v6, SOL_SOCKET, SO_BUF_LOCK, "SO_BUF_LOCK", 1) ||
	    seti(p0, IPPROTO_IP, IP_TOS, "IP_TOS", 0x10) ||
	    seti(p0, SOL_SOCKET, SO_PRIORITY, "SO_PRIORITY", 0) ||
	    seti(p2, IPPROTO_IP, IP_TOS, "IP_TOS", 0x10) ||
	    seti(p2, SOL_SOCKET, SO_PRIORITY, "SO_PRIORITY", 2))
		return -1;
	if (W(dflt, SOL_SOCKET, SO_SNDBUF) || W(dflt, SOL_SOCKET, SO_RCVBUF) ||
	    W(dflt, SOL_SOCKET, SO_BUF_LOCK) || W(dflt, IPPROTO_IP, IP_TTL) ||
	    W(dflt, IPPROTO_TCP, TCP_KEEPIDLE) || W(dflt, IPPROTO_TCP, TCP_KEEPINTVL) ||
	    W(dflt, SOL_SOCKET, SO_KEEPALIVE) || W(us[0], SOL_SOCKET, SO_SNDBUF) ||
	    W(us[0], SOL_SOCKET, SO_BUF_LOCK) || W(us[1], SOL_SOCKET, SO_BUF_LOCK) ||
	    W(v6, IPPROTO_IPV6, IPV6_V6ONLY) || W(v6, SOL_SOCKET, SO_BUF_LOCK) ||
	    W(v6, SOL_SOCKET, SO_SNDBUF) || W(p0, SOL_SOCKET, SO_PRIORITY) ||
	    W(p0, IPPROTO_IP, IP_TOS) || W(p2, SOL_SOCKET, SO_PRIORITY))
		return -1;
	return 0;
}

int main(int argc, char **argv)
{
	struct sock_filter code[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_LEN, 0),
		BPF_JUMP(BPF_JMP | BPF_JGT | BPF_K, 10000, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, 0),
		BPF_STMT(BPF_RET | BPF_K, 0xffff),
	};
	struct sock_fprog prog = { 4, code };
	struct linger lg = { 1, 17 };
	struct timeval tv = { 3, 250000 };
	int udp = socket(AF_INET, SOCK_DGRAM, 0), tcp = socket(AF_INET, SOCK_STREAM, 0);
	int lsn = socket(AF_INET6, SOCK_STREAM, 0), plain = socket(AF_INET, SOCK_STREAM, 0);
	int sv[2];
	struct sockaddr_in6 a6 = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };

	test_init(argc, argv);
	if (udp < 0 || tcp < 0 || lsn < 0 || plain < 0 || socketpair(AF_UNIX, SOCK_DGRAM, 0, sv))
		return fail_errno("socket"), 1;
	if (seti(udp, SOL_SOCKET, SO_BROADCAST, "SO_BROADCAST", 1) ||
	    seti(udp, SOL_SOCKET, SO_PRIORITY, "SO_PRIORITY", 5) ||
	    seti(udp, SOL_SOCKET, SO_MARK, "SO_MARK", 42) ||
	    seti(udp, SOL_SOCKET, SO_RCVBUF, "SO_RCVBUF", 100000) ||
	    set(udp, SOL_SOCKET, SO_BINDTODEVICE, "SO_BINDTODEVICE", "lo", 3) ||
	    set(udp, SOL_SOCKET, SO_ATTACH_FILTER, "SO_ATTACH_FILTER", &prog, sizeof(prog)) ||
	    seti(udp, IPPROTO_IP, IP_TOS, "IP_TOS", 0x10) ||
	    seti(udp, IPPROTO_IP, IP_TTL, "IP_TTL", 33) ||
	    seti(udp, IPPROTO_IP, IP_PKTINFO, "IP_PKTINFO", 1) ||
	    seti(udp, IPPROTO_IP, IP_FREEBIND, "IP_FREEBIND", 1) ||
	    seti(tcp, SOL_SOCKET, SO_KEEPALIVE, "SO_KEEPALIVE", 1) ||
	    seti(tcp, SOL_SOCKET, SO_RCVLOWAT, "SO_RCVLOWAT", 7) ||
	    seti(tcp, SOL_SOCKET, SO_OOBINLINE, "SO_OOBINLINE", 1) ||
	    seti(tcp, SOL_SOCKET, SO_REUSEADDR, "SO_REUSEADDR", 1) ||
	    set(tcp, SOL_SOCKET, SO_LINGER, "SO_LINGER", &lg, sizeof(lg)) ||
	    set(tcp, SOL_SOCKET, SO_SNDTIMEO, "SO_SNDTIMEO", &tv, sizeof(tv)) ||
	    set(tcp, SOL_SOCKET, SO_RCVTIMEO, "SO_RCVTIMEO", &tv, sizeof(tv)) ||
	    seti(tcp, IPPROTO_TCP, TCP_NODELAY, "TCP_NODELAY", 1) ||
	    seti(tcp, IPPROTO_TCP, TCP_CORK, "TCP_CORK", 1) ||
	    seti(tcp, IPPROTO_TCP, TCP_KEEPIDLE, "TCP_KEEPIDLE", 77) ||
	    seti(tcp, IPPROTO_TCP, TCP_KEEPINTVL, "TCP_KEEPINTVL", 11) ||
	    seti(tcp, IPPROTO_TCP, TCP_KEEPCNT, "TCP_KEEPCNT", 4) ||
	    seti(lsn, SOL_SOCKET, SO_REUSEPORT, "SO_REUSEPORT", 1) ||
	    seti(lsn, IPPROTO_IPV6, IPV6_TCLASS, "IPV6_TCLASS", 0x20) ||
	    seti(lsn, IPPROTO_IPV6, IPV6_UNICAST_HOPS, "IPV6_UNICAST_HOPS", 9) ||
	    seti(lsn, IPPROTO_TCP, TCP_NODELAY, "TCP_NODELAY", 1) ||
	    seti(lsn, SOL_SOCKET, SO_MARK, "SO_MARK", 44) ||
	    seti(lsn, SOL_SOCKET, SO_RCVBUF, "SO_RCVBUF", 90000) ||
	    seti(lsn, IPPROTO_IP, IP_FREEBIND, "IP_FREEBIND", 1) ||
	    seti(sv[0], SOL_SOCKET, SO_PASSCRED, "SO_PASSCRED", 1) ||
	    seti(sv[0], SOL_SOCKET, SO_SNDBUF, "SO_SNDBUF", 50000) ||
	    set(sv[1], SOL_SOCKET, SO_ATTACH_FILTER, "SO_ATTACH_FILTER", &prog, sizeof(prog)))
		return 1;
	if (bind(lsn, (void *)&a6, sizeof(a6)) || listen(lsn, 3))
		return fail_errno("listen"), 1;
	if (W(udp, SOL_SOCKET, SO_BROADCAST) || W(udp, SOL_SOCKET, SO_PRIORITY) ||
	    W(udp, SOL_SOCKET, SO_MARK) || W(udp, SOL_SOCKET, SO_RCVBUF) ||
	    W(udp, SOL_SOCKET, SO_BUF_LOCK) || W(udp, SOL_SOCKET, SO_BINDTODEVICE) ||
	    W(udp, IPPROTO_IP, IP_TOS) || W(udp, IPPROTO_IP, IP_TTL) ||
	    W(udp, IPPROTO_IP, IP_PKTINFO) || W(udp, IPPROTO_IP, IP_FREEBIND) ||
	    W(tcp, SOL_SOCKET, SO_KEEPALIVE) ||
	    W(tcp, SOL_SOCKET, SO_RCVLOWAT) || W(tcp, SOL_SOCKET, SO_OOBINLINE) ||
	    W(tcp, SOL_SOCKET, SO_REUSEADDR) || W(tcp, SOL_SOCKET, SO_LINGER) ||
	    W(tcp, SOL_SOCKET, SO_SNDTIMEO) || W(tcp, SOL_SOCKET, SO_RCVTIMEO) ||
	    W(tcp, IPPROTO_TCP, TCP_NODELAY) || W(tcp, IPPROTO_TCP, TCP_CORK) ||
	    W(tcp, IPPROTO_TCP, TCP_KEEPIDLE) || W(tcp, IPPROTO_TCP, TCP_KEEPINTVL) ||
	    W(tcp, IPPROTO_TCP, TCP_KEEPCNT) || W(lsn, SOL_SOCKET, SO_REUSEPORT) ||
	    W(lsn, IPPROTO_IPV6, IPV6_TCLASS) || W(lsn, IPPROTO_IPV6, IPV6_UNICAST_HOPS) ||
	    W(lsn, IPPROTO_TCP, TCP_NODELAY) || W(lsn, SOL_SOCKET, SO_MARK) ||
	    W(lsn, SOL_SOCKET, SO_RCVBUF) || W(lsn, SOL_SOCKET, SO_BUF_LOCK) ||
	    W(lsn, IPPROTO_IP, IP_FREEBIND) || W(sv[0], SOL_SOCKET, SO_PASSCRED) ||
	    W(sv[0], SOL_SOCKET, SO_SNDBUF) || W(sv[0], SOL_SOCKET, SO_BUF_LOCK) ||
	    W(plain, SOL_SOCKET, SO_BUF_LOCK) || W(plain, SOL_SOCKET, SO_RCVLOWAT) ||
	    W(lsn, IPPROTO_IPV6, IPV6_V6ONLY) || defaults())
		return 1;
	test_daemon();
	test_waitsig();

	for (int i = 0; i < nr_opts; i++) {
		struct opt *o = &opts[i];
		unsigned char got[64];
		socklen_t l = sizeof(got);

		if (getsockopt(o->sk, o->level, o->opt, got, &l))
			return fail_errno("getsockopt %s after the restore", o->name), 1;
		if ((int)l != o->len || memcmp(got, o->want, l))
			return fail("%s of fd %d differs after the restore (%d bytes: %d, want %d)",
				    o->name, o->sk, (int)l, *(int *)got, *(int *)o->want), 1;
	}
	for (int k = 0; k < 2; k++) { /* the filters: same length, same program */
		int sk = k ? sv[1] : udp;
		struct sock_filter got[8];
		socklen_t l = 0;

		if (getsockopt(sk, SOL_SOCKET, SO_GET_FILTER, NULL, &l) || l != 4)
			return fail("fd %d: a filter of %u instructions, want 4", sk, l), 1;
		if (getsockopt(sk, SOL_SOCKET, SO_GET_FILTER, got, &l) ||
		    memcmp(got, code, sizeof(code)))
			return fail("fd %d: the filter differs", sk), 1;
	}
	pass();
	return 0;
}
