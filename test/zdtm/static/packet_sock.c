// SPDX-License-Identifier: GPL-2.0
/*
 * Packet sockets: a SOCK_RAW one bound to lo with auxdata, origdev, a
 * timestamp source and a multicast membership receives a frame sent on
 * lo after the restore, with its auxdata; two SOCK_DGRAM ones in a hash
 * fanout group on lo are still in it, and one of them gets a frame; an
 * unbound one with protocol 0 stays so. Ethertypes are local
 * experimental ones (0x88b5, 0x88b6), the fanout id this test's pid.
 */
#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <linux/net_tstamp.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "zdtm.h"

#define P_RAW	0x88b5
#define P_DGRAM 0x88b6
static const unsigned char mcast[6] = { 0x01, 0x00, 0x5e, 0x7f, 0x00, 0x42 };

static int pk(int type, int proto, int ifindex)
{
	struct sockaddr_ll a = { .sll_family = AF_PACKET, .sll_protocol = htons(proto),
				 .sll_ifindex = ifindex };
	int sk = socket(AF_PACKET, type, htons(proto));

	if (sk < 0 || (ifindex && bind(sk, (void *)&a, sizeof(a))))
		return -1;
	return sk;
}

static int opt(int sk, int o)
{
	int v = -1;
	socklen_t l = sizeof(v);

	return getsockopt(sk, SOL_PACKET, o, &v, &l) ? -1 : v;
}

/* A frame of @proto with @msg on lo, sent from a new socket. */
static int send_lo(int lo, int proto, const char *msg)
{
	struct sockaddr_ll a = { .sll_family = AF_PACKET, .sll_protocol = htons(proto),
				 .sll_ifindex = lo, .sll_halen = 6 };
	int sk = socket(AF_PACKET, SOCK_DGRAM, 0), ret;

	ret = sk < 0 ? -1 : (int)sendto(sk, msg, strlen(msg), 0, (void *)&a, sizeof(a));
	close(sk);
	return ret == (int)strlen(msg) ? 0 : -1;
}

/* /proc/net/dev_mcast holds our address on lo (the membership). */
static bool has_mcast(void)
{
	char line[256];
	bool found = false;
	FILE *f = fopen("/proc/net/dev_mcast", "r");

	while (f && fgets(line, sizeof(line), f))
		found |= strstr(line, " lo ") && strstr(line, "01005e7f0042");
	if (f)
		fclose(f);
	return found;
}

int main(int argc, char **argv)
{
	int lo, raw, f1, f2, unb, ts = SOF_TIMESTAMPING_RAW_HARDWARE, one = 1, fan;
	struct packet_mreq mr = { .mr_type = PACKET_MR_MULTICAST, .mr_alen = 6 };
	char buf[256], cbuf[256];
	struct iovec iov = { buf, sizeof(buf) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };
	struct pollfd pf[2];
	ssize_t n;

	test_init(argc, argv);
	lo = if_nametoindex("lo");
	raw = pk(SOCK_RAW, P_RAW, lo);
	f1 = pk(SOCK_DGRAM, P_DGRAM, lo);
	f2 = pk(SOCK_DGRAM, P_DGRAM, lo);
	unb = socket(AF_PACKET, SOCK_DGRAM, 0);
	if (!lo || raw < 0 || f1 < 0 || f2 < 0 || unb < 0)
		return fail_errno("packet socket"), 1;
	mr.mr_ifindex = lo;
	memcpy(mr.mr_address, mcast, 6);
	fan = (getpid() & 0xffff) | PACKET_FANOUT_HASH << 16;
	if (setsockopt(raw, SOL_PACKET, PACKET_AUXDATA, &one, sizeof(one)) ||
	    setsockopt(raw, SOL_PACKET, PACKET_ORIGDEV, &one, sizeof(one)) ||
	    setsockopt(raw, SOL_PACKET, PACKET_TIMESTAMP, &ts, sizeof(ts)) ||
	    setsockopt(raw, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof(mr)) ||
	    setsockopt(f1, SOL_PACKET, PACKET_FANOUT, &fan, sizeof(fan)) ||
	    setsockopt(f2, SOL_PACKET, PACKET_FANOUT, &fan, sizeof(fan)))
		return fail_errno("setsockopt"), 1;
	test_daemon();
	test_waitsig();

	if (opt(raw, PACKET_AUXDATA) != 1 || opt(raw, PACKET_ORIGDEV) != 1 ||
	    opt(raw, PACKET_TIMESTAMP) != ts || !has_mcast())
		return fail("raw socket's options or membership lost"), 1;
	if (opt(f1, PACKET_FANOUT) != fan || opt(f2, PACKET_FANOUT) != fan ||
	    opt(unb, PACKET_FANOUT) != 0)
		return fail("fanout %#x %#x, want %#x", opt(f1, PACKET_FANOUT),
			    opt(f2, PACKET_FANOUT), fan), 1;
	if (send_lo(lo, P_RAW, "raw frame after restore") || send_lo(lo, P_DGRAM, "fanout"))
		return fail_errno("send on lo"), 1;
	n = recvmsg(raw, &mh, 0);
	/* a raw socket sees the ethernet header first */
	if (n != ETH_HLEN + 23 || memcmp(buf + ETH_HLEN, "raw frame after restore", 23))
		return fail("raw socket received %zd bytes", n), 1;
	if (!CMSG_FIRSTHDR(&mh) || CMSG_FIRSTHDR(&mh)->cmsg_type != PACKET_AUXDATA)
		return fail("no auxdata after the restore"), 1;
	pf[0] = (struct pollfd){ .fd = f1, .events = POLLIN };
	pf[1] = (struct pollfd){ .fd = f2, .events = POLLIN };
	if (poll(pf, 2, 5000) != 1)
		return fail("fanout: %s", "not exactly one member got the frame"), 1;
	n = recv(pf[0].revents ? f1 : f2, buf, sizeof(buf), 0);
	if (n != 6 || memcmp(buf, "fanout", 6))
		return fail("fanout member received %zd bytes", n), 1;
	if (recv(unb, buf, sizeof(buf), MSG_DONTWAIT) >= 0)
		return fail("the protocol-0 socket received a frame"), 1;
	pass();
	return 0;
}
