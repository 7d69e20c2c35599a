// SPDX-License-Identifier: MIT
/*
 * Datagrams queued in a UDP or UDP-Lite socket: saved in sk-queues.img as unix
 * sockets' queues are (an sk_packet_entry per datagram, its payload
 * after it), with the sender's address in sk_packet_entry.addr, the
 * field CRIU reserves for it (CRIU drops these queues with a warning).
 *
 * Dump: each datagram is peeked in place (SO_PEEK_OFF + MSG_PEEK, the
 * task's own peek offset put back after), with its sender.
 *
 * Restore: nothing but the network can queue a datagram with another
 * sender's address, and binding to the sender's port is no way (the
 * sender usually still holds it; a remote address is not ours). So
 * amber forges each datagram as the sender's IPv4 or IPv6 packet on a
 * raw socket (IPPROTO_RAW, the headers written by amber) to the restored
 * socket's address (loopback when it is bound to the wildcard), between
 * bind() and connect(). Local delivery is synchronous; the queue is then
 * peeked again and must hold every datagram, else the restore fails
 * (a socket of the host bound closer to that address took one).
 *
 * A UDP-Lite datagram is forged covering the whole datagram with its
 * checksum (the sender's coverage is not seen by the receiver).
 *
 * Lost: the address a datagram was sent to (IP_PKTINFO shows the one it
 * was forged to), its TTL, TOS and arrival time.
 *
 * Raw and ICMP "ping" sockets' queues are refused (inet.c): the kernel
 * peeks only the first datagram of such a socket (no SO_PEEK_OFF for
 * them), so saving the queue would take it out of the running socket;
 * and a datagram can only be put back by sending it through the IP stack
 * again, where every raw socket of its protocol and the kernel's own
 * handler (ICMP answers an echo request, a reply goes to ping sockets)
 * see it too: a copy for other processes, not the queue as it was.
 */
#define LOG_PREFIX "inet: "
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip6.h>
#include <netinet/udp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/log.h"
#include "base/uapi.h"
#include "base/util.h"
#include "files/files_internal.h"
#include "sk-packet.pb-c.h"

#define UDP_MAX_PAYLOAD 65507 /* IPv4's; IPv6 jumbograms are not forged */

/* ---- dump ---- */

/* Peeks the datagram at byte offset @off (its length); -EAGAIN at the end of the queue. */
static ssize_t peek_dgram(int sk, int off, void *buf, size_t len, struct sockaddr_storage *from,
			  socklen_t *fl)
{
	struct iovec iov = { buf, len };
	struct msghdr mh = { .msg_name = from, .msg_namelen = sizeof(*from), .msg_iov = &iov,
			     .msg_iovlen = 1 };
	ssize_t n;

	if (setsockopt(sk, SOL_SOCKET, SO_PEEK_OFF, &off, sizeof(off)))
		return -errno;
	n = recvmsg(sk, &mh, MSG_PEEK | MSG_DONTWAIT | MSG_TRUNC);
	if (n < 0)
		return -errno;
	*fl = mh.msg_namelen;
	return n;
}

/*
 * Walks the queue of @sk: @each gets every datagram (-errno stops the
 * walk). Returns the number of datagrams or -errno. The peek offset is
 * put back as it was.
 */
static int walk_queue(int sk, int (*each)(void *arg, const void *buf, size_t len,
					  const struct sockaddr_storage *from, socklen_t fl),
		      void *arg)
{
	cleanup_free uint8_t *buf = malloc(UDP_MAX_PAYLOAD + 1);
	int orig = -1, off = 0, nr = 0, ret = 0;
	socklen_t ol = sizeof(orig);

	if (!buf)
		return -ENOMEM;
	getsockopt(sk, SOL_SOCKET, SO_PEEK_OFF, &orig, &ol);
	for (;;) {
		struct sockaddr_storage from = {};
		socklen_t fl = 0;
		ssize_t n = peek_dgram(sk, off, buf, UDP_MAX_PAYLOAD + 1, &from, &fl);

		/* A datagram of 0 bytes is peeked once (the kernel marks it), then skipped. */
		if (n < 0) {
			ret = n == -EAGAIN ? 0 : n;
			break;
		}
		if (n > UDP_MAX_PAYLOAD) {
			ret = -EMSGSIZE;
			break;
		}
		ret = each ? each(arg, buf, n, &from, fl) : 0;
		if (ret)
			break;
		nr++;
		off += n;
	}
	if (setsockopt(sk, SOL_SOCKET, SO_PEEK_OFF, &orig, sizeof(orig)))
		pr_warn("can't put the peek offset of socket fd %d back\n", sk);
	return ret ? ret : nr;
}

struct dump_arg {
	struct files_dump_ctx *fc;
	uint32_t id;
};

static int write_dgram(void *arg, const void *buf, size_t len,
		       const struct sockaddr_storage *from, socklen_t fl)
{
	struct dump_arg *a = arg;
	SkPacketEntry pe = SK_PACKET_ENTRY__INIT;
	struct files_dump *st = a->fc->st;
	int ret = files_get_img(a->fc, &st->sk_queues, IMG_SK_QUEUES);

	pe.id_for = a->id;
	pe.length = len;
	pe.has_addr = true;
	pe.addr.data = (uint8_t *)from;
	pe.addr.len = fl;
	if (!ret)
		ret = img_write_msg(st->sk_queues, &pe.base);
	if (!ret && len)
		ret = img_write_raw(st->sk_queues, buf, len);
	return ret;
}

int files_udp_queue_dump(struct files_dump_ctx *fc, int sk, const struct fd_desc *d,
			 uint32_t id)
{
	struct dump_arg a = { fc, id };
	int reuseport = 0, peek_off = -1, nr;
	socklen_t l = sizeof(reuseport), pl = sizeof(peek_off);
	char c;

	/*
	 * Empty: the socket's peek offset is left alone. (A peek moves the
	 * task's own offset when it set one: walk_queue() puts that back.)
	 */
	getsockopt(sk, SOL_SOCKET, SO_PEEK_OFF, &peek_off, &pl);
	if (peek_off < 0 && recv(sk, &c, 1, MSG_PEEK | MSG_DONTWAIT) < 0 && errno == EAGAIN)
		return 0;
	if (!getsockopt(sk, SOL_SOCKET, SO_REUSEPORT, &reuseport, &l) && reuseport) {
		/* A forged datagram would go to any socket of the group. */
		pr_err("fd %d of pid %d: UDP socket with SO_REUSEPORT and datagrams queued: not "
		       "supported\n", d->fd, d->pid);
		return -EOPNOTSUPP;
	}
	nr = walk_queue(sk, write_dgram, &a);
	if (nr < 0) {
		pr_err("fd %d of pid %d: can't peek the UDP socket's queue: %s\n", d->fd, d->pid,
		       strerror(-nr));
		return nr;
	}
	if (nr)
		pr_debug("fd %d of pid %d: %d datagram(s) queued\n", d->fd, d->pid, nr);
	return 0;
}

/* ---- restore ---- */

bool files_udp_queue_ok(const struct rdata *q, uint32_t family)
{
	const struct sockaddr *sa = (const void *)q->addr;

	return q->addr_len >= sizeof(sa_family_t) && q->len <= UDP_MAX_PAYLOAD &&
	       !q->nr_rights && !q->has_ucred && sa->sa_family == family &&
	       q->addr_len == (family == AF_INET ? sizeof(struct sockaddr_in)
						 : sizeof(struct sockaddr_in6));
}

static uint32_t csum_add(uint32_t sum, const void *p, size_t len)
{
	const uint8_t *b = p;

	for (; len > 1; len -= 2, b += 2)
		sum += (uint32_t)b[0] << 8 | b[1];
	if (len)
		sum += (uint32_t)b[0] << 8;
	return sum;
}

static uint16_t csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/*
 * The UDP or UDP-Lite checksum over the pseudo header (@alen bytes of
 * each address), the header and the data (never 0 on the wire).
 */
static uint16_t l4_csum(const void *src, const void *dst, size_t alen, uint8_t proto,
			const struct udphdr *uh, uint32_t ulen)
{
	uint8_t tail[8] = { ulen >> 24, ulen >> 16, ulen >> 8, ulen, 0, 0, 0, proto };
	uint32_t sum = csum_add(0, src, alen);
	uint16_t c;

	sum = csum_add(sum, dst, alen);
	sum = csum_add(sum, tail, sizeof(tail));
	sum = csum_add(sum, uh, ulen);
	c = csum_fold(sum);
	return htons(c ? c : 0xffff);
}

/* UDP's length field is UDP-Lite's checksum coverage: 0, the whole datagram. */
static struct udphdr l4_header(uint8_t proto, uint16_t sport, uint16_t dport, uint32_t ulen)
{
	return (struct udphdr){ .source = sport, .dest = dport,
				.len = proto == IPPROTO_UDPLITE ? 0 : htons(ulen) };
}

/* An IPv4 packet from @src to @dst (ports in network order) into @pkt; its length. */
static size_t forge_v4(uint8_t *pkt, uint8_t proto, struct in_addr src, uint16_t sport,
		       struct in_addr dst, uint16_t dport, const uint8_t *data, uint32_t len)
{
	struct iphdr *ip = (void *)pkt;
	struct udphdr *uh = (void *)(ip + 1);
	uint32_t ulen = sizeof(*uh) + len;

	*ip = (struct iphdr){ .ihl = 5, .version = 4, .ttl = 64, .protocol = proto,
			      .tot_len = htons(sizeof(*ip) + ulen),
			      .saddr = src.s_addr, .daddr = dst.s_addr };
	*uh = l4_header(proto, sport, dport, ulen);
	memcpy(uh + 1, data, len);
	/* UDP: checksum 0, none, which IPv4 allows; UDP-Lite requires one */
	if (proto == IPPROTO_UDPLITE)
		uh->check = l4_csum(&src, &dst, 4, proto, uh, ulen);
	return sizeof(*ip) + ulen;
}

static size_t forge_v6(uint8_t *pkt, uint8_t proto, const struct in6_addr *src, uint16_t sport,
		       const struct in6_addr *dst, uint16_t dport, const uint8_t *data,
		       uint32_t len)
{
	struct ip6_hdr *ip = (void *)pkt;
	struct udphdr *uh = (void *)(ip + 1);
	uint32_t ulen = sizeof(*uh) + len;

	memset(ip, 0, sizeof(*ip));
	ip->ip6_flow = htonl(6u << 28);
	ip->ip6_plen = htons(ulen);
	ip->ip6_nxt = proto;
	ip->ip6_hlim = 64;
	ip->ip6_src = *src;
	ip->ip6_dst = *dst;
	*uh = l4_header(proto, sport, dport, ulen);
	memcpy(uh + 1, data, len);
	/* IPv6 requires the checksum: over the pseudo header, header and data */
	uh->check = l4_csum(src, dst, 16, proto, uh, ulen);
	return sizeof(*ip) + ulen;
}

/* The restored socket's address as a forged packet's destination (family of @from). */
static int forge_dst(const InetSkEntry *e, int family, struct in_addr *d4, struct in6_addr *d6)
{
	static const uint8_t mapped[12] = { [10] = 0xff, [11] = 0xff };
	uint32_t a[4] = {};

	if (e->n_src_addr)
		memcpy(a, e->src_addr, e->n_src_addr * 4);
	if (e->family == AF_INET6 && !memcmp(a, mapped, 12))
		a[0] = a[3]; /* v4-mapped: its IPv4 address */
	else if (e->family == AF_INET6 && family == AF_INET && (a[0] | a[1] | a[2] | a[3]))
		return -EINVAL;
	if (family == AF_INET) {
		d4->s_addr = a[0] ? a[0] : htonl(INADDR_LOOPBACK);
		return 0;
	}
	if (a[0] | a[1] | a[2] | a[3])
		memcpy(d6, a, 16);
	else
		*d6 = in6addr_loopback;
	return 0;
}

/* A raw socket of @family, made on first use (IPv6 may be off here). */
static int raw_of(int family, int *fd)
{
	if (*fd < 0)
		*fd = socket(family, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
	return *fd < 0 ? -errno : *fd;
}

static int forge_one(int *raw4, int *raw6, const InetSkEntry *e, const struct rdata *q,
		     uint8_t *pkt)
{
	struct sockaddr_storage ss = {};
	struct in_addr d4;
	struct in6_addr d6;
	size_t n;
	int raw, ret;

	memcpy(&ss, q->addr, q->addr_len);
	if (ss.ss_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&((struct sockaddr_in6 *)&ss)->sin6_addr)) {
		/* sent over IPv4 to a dual-stack socket */
		struct sockaddr_in6 s6 = *(struct sockaddr_in6 *)&ss;
		struct sockaddr_in *s4 = (void *)&ss;

		memset(&ss, 0, sizeof(ss));
		s4->sin_family = AF_INET;
		s4->sin_port = s6.sin6_port;
		memcpy(&s4->sin_addr, &s6.sin6_addr.s6_addr[12], 4);
	}
	ret = forge_dst(e, ss.ss_family, &d4, &d6);
	if (ret)
		return ret;
	if (ss.ss_family == AF_INET) {
		struct sockaddr_in to = { .sin_family = AF_INET, .sin_addr = d4 };

		n = forge_v4(pkt, e->proto, ((struct sockaddr_in *)&ss)->sin_addr,
			     ((struct sockaddr_in *)&ss)->sin_port, d4, htons(e->src_port), q->data,
			     q->len);
		raw = raw_of(AF_INET, raw4);
		if (raw < 0)
			return raw;
		return sendto(raw, pkt, n, 0, (void *)&to, sizeof(to)) == (ssize_t)n ? 0 : -errno;
	}
	struct sockaddr_in6 to6 = { .sin6_family = AF_INET6, .sin6_addr = d6 };

	n = forge_v6(pkt, e->proto, &((struct sockaddr_in6 *)&ss)->sin6_addr,
		     ((struct sockaddr_in6 *)&ss)->sin6_port, &d6, htons(e->src_port), q->data,
		     q->len);
	raw = raw_of(AF_INET6, raw6);
	if (raw < 0)
		return raw;
	return sendto(raw, pkt, n, 0, (void *)&to6, sizeof(to6)) == (ssize_t)n ? 0 : -errno;
}

/*
 * Room in the receive buffer for what is forged, then the saved size back;
 * and its lock bits (SO_BUF_LOCK, -1 where the kernel has none), which
 * SO_RCVBUFFORCE sets: a size that was not the user's stays unlocked.
 */
static int grow_rcvbuf(int sk, int *saved, int *locks, size_t more)
{
	socklen_t l = sizeof(*saved);
	size_t want;

	if (getsockopt(sk, SOL_SOCKET, SO_RCVBUF, saved, &l))
		return -errno;
	l = sizeof(*locks);
	if (getsockopt(sk, SOL_SOCKET, SO_BUF_LOCK, locks, &l))
		*locks = -1;
	want = min((size_t)*saved + more, (size_t)INT_MAX / 2);
	return setsockopt(sk, SOL_SOCKET, SO_RCVBUFFORCE, &(int){ (int)want }, sizeof(int)) ?
		       -errno : 0;
}

int files_udp_queue_restore(struct files_rst *fr, int sk, const InetSkEntry *e, uint32_t id)
{
	cleanup_close int raw4 = -1, raw6 = -1;
	cleanup_free uint8_t *pkt = NULL;
	size_t total = 0;
	int nr, rcvbuf = 0, locks = -1, got, ret = 0;
	struct rdata *q = files_skq_of(fr, id, &nr);

	for (int i = 0; i < nr; i++)
		total += q[i].len + 1024; /* and the kernel's overhead */
	if (!nr)
		return 0;
	pkt = malloc(sizeof(struct ip6_hdr) + sizeof(struct udphdr) + UDP_MAX_PAYLOAD);
	if (!pkt || (ret = grow_rcvbuf(sk, &rcvbuf, &locks, total * 2))) {
		ret = !pkt ? -ENOMEM : ret;
		pr_err("inet socket %u: can't forge its %d queued datagram(s): %s\n", e->ino, nr,
		       strerror(-ret));
		return ret;
	}
	for (int i = 0; i < nr && !ret; i++)
		ret = forge_one(&raw4, &raw6, e, &q[i], pkt);
	/* the kernel doubles what it is given */
	if (setsockopt(sk, SOL_SOCKET, SO_RCVBUFFORCE, &(int){ rcvbuf / 2 }, sizeof(int)) && !ret)
		ret = -errno;
	if (locks >= 0 && setsockopt(sk, SOL_SOCKET, SO_BUF_LOCK, &locks, sizeof(locks)) && !ret)
		ret = -errno;
	got = ret ? 0 : walk_queue(sk, NULL, NULL);
	if (ret || got != nr) {
		pr_err("inet socket %u: %d of its %d queued datagram(s) queued again%s%s\n", e->ino,
		       got < 0 ? 0 : got, nr, ret ? ": " : " (a socket of the host bound "
		       "closer to its address took the others?)", ret ? strerror(-ret) : "");
		return ret ? ret : -EIO;
	}
	pr_debug("inet socket %u: %d datagram(s) queued again\n", e->ino, nr);
	return 0;
}
