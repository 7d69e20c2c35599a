// SPDX-License-Identifier: MIT
/*
 * Established TCP connections (--tcp-established), through TCP_REPAIR:
 * the stream half of an inet socket, saved in CRIU's tcp-stream-INO.img.
 *
 * Dump (the tree frozen, its connections behind the network lock): the
 * socket goes into repair mode, where reading it neither consumes data
 * nor sends anything; both queues' end sequence numbers (TCP_QUEUE_SEQ),
 * their contents (MSG_PEEK on the selected queue: the send queue holds
 * the unacknowledged and the unsent data), the negotiated options
 * (TCP_INFO), MSS clamp, timestamp and window (TCP_REPAIR_WINDOW) are
 * read. A socket closed in repair mode vanishes without a FIN or a RST,
 * so once the dump succeeded the killed tree leaves the peer waiting for
 * the restore; when the tree runs on (a failed dump, --leave-running)
 * the sockets leave repair mode first (files_tcp_dump_resume()).
 *
 * Restore: a new socket in repair mode gets both queues' start sequence
 * numbers, is bound and connect()ed (which in repair mode sends nothing
 * and makes it ESTABLISHED), gets its options, the receive queue and the
 * sent part of the send queue back, then its window. Once every task
 * exists (finish), repair mode is left, which sends a window probe, and
 * the unsent tail of the send queue is written normally; the network lock
 * goes right after. --tcp-close restores such sockets closed instead.
 *
 * SYN_SENT is saved too, as CRIU saves it (restore_syn_sent()): the SYN
 * is sent again with the same initial sequence number.
 *
 * Every state past the handshake but TIME_WAIT is saved. The sequence
 * numbers count a FIN as a byte, and as CRIU's images do, outq_seq
 * includes our FIN while outq_len and unsq_len leave it out (it carries
 * no data); inq_seq includes the peer's FIN, inq_len (SIOCINQ) does not.
 * Our FIN comes back by shutdown(SHUT_WR): in repair mode and marked
 * sent when the peer had acknowledged it (FIN_WAIT2), else after repair
 * mode and the unsent data (FIN_WAIT1, LAST_ACK, CLOSING), so it goes out
 * again after the data, as it would have. The peer's FIN is not sent to
 * the socket again (CRIU forges one on a raw socket): the receive queue
 * ends past it, so the restored socket acknowledges it, and
 * shutdown(SHUT_RD) ends reads after the queued data. The kernel then
 * believes the peer still may send: once our FIN is acknowledged the
 * socket sits in FIN_WAIT2 where the old one would have closed
 * (LAST_ACK) or gone to TIME_WAIT (CLOSING).
 */
#define LOG_PREFIX "tcp: "
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <linux/sockios.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/log.h"
#include "base/uapi.h"
#include "base/util.h"
#include "files/files_internal.h"
#include "tcp-stream.pb-c.h"

#ifndef TCPOPT_MSS
#define TCPOPT_MSS	 2
#define TCPOPT_WINDOW	 3
#define TCPOPT_SACK_PERM 4
#define TCPOPT_TIMESTAMP 8
#endif
#ifndef TCP_TIMESTAMP
#define TCP_TIMESTAMP 24
#endif

/* Bounds on what an image may ask for (the kernel's tcp_rmem/wmem maxima are far below). */
#define TCP_MAX_QUEUE (256u << 20)
#define TCP_MAX_WSCALE 14

static const char *const tcp_state_names[] = {
	[1] = "ESTABLISHED", [2] = "SYN_SENT",	 [3] = "SYN_RECV",   [4] = "FIN_WAIT1",
	[5] = "FIN_WAIT2",   [6] = "TIME_WAIT",	 [7] = "CLOSE",	     [8] = "CLOSE_WAIT",
	[9] = "LAST_ACK",    [10] = "LISTEN",	 [11] = "CLOSING",   [12] = "NEW_SYN_RECV",
};

const char *files_tcp_state_name(int state)
{
	if (state > 0 && state < (int)ARRAY_SIZE(tcp_state_names) && tcp_state_names[state])
		return tcp_state_names[state];
	return "unknown";
}

int files_tcp_state(int sk)
{
	struct tcp_info ti = {};
	socklen_t l = sizeof(ti);

	if (getsockopt(sk, IPPROTO_TCP, TCP_INFO, &ti, &l))
		return -errno;
	return ti.tcpi_state;
}

static int set_int(int sk, int level, int opt, int v)
{
	return setsockopt(sk, level, opt, &v, sizeof(v)) ? -errno : 0;
}

static int get_u32(int sk, int opt, uint32_t *v)
{
	socklen_t l = sizeof(*v);

	return getsockopt(sk, IPPROTO_TCP, opt, v, &l) ? -errno : 0;
}

/* Our FIN is queued (counted in write_seq, SIOCOUTQ and SIOCOUTQNSD, not in the data). */
static bool fin_queued(int state)
{
	return state == TCP_FIN_WAIT1 || state == TCP_FIN_WAIT2 || state == TCP_LAST_ACK ||
	       state == TCP_CLOSING;
}

/* The peer's FIN arrived before the dump. */
static bool peer_fin(int state)
{
	return state == TCP_CLOSE_WAIT || state == TCP_LAST_ACK || state == TCP_CLOSING;
}

/* ---- dump ---- */

/* Peeks queue @q (TCP_RECV_QUEUE or TCP_SEND_QUEUE) of a socket in repair mode. */
static int peek_queue(int sk, int q, uint32_t *seq, uint8_t *buf, uint32_t len)
{
	ssize_t n = 0;

	if (set_int(sk, IPPROTO_TCP, TCP_REPAIR_QUEUE, q) || get_u32(sk, TCP_QUEUE_SEQ, seq))
		return -errno;
	if (len) {
		n = recv(sk, buf, len, MSG_PEEK | MSG_DONTWAIT);
		if (n < 0)
			return -errno;
	}
	return n == (ssize_t)len ? 0 : -EAGAIN;
}

static int read_stream(int sk, int state, const TcpOptsEntry *opts, const struct sk_known *k,
		       TcpStreamEntry *e, uint8_t **data)
{
	struct tcp_repair_window w;
	struct tcp_info ti = {};
	socklen_t l = sizeof(ti);
	int inq = 0, outq = 0, unsent = 0;
	int ret;

	if (ioctl(sk, SIOCINQ, &inq) || ioctl(sk, SIOCOUTQ, &outq) ||
	    ioctl(sk, SIOCOUTQNSD, &unsent) || inq < 0 || outq < 0 || unsent < 0 || unsent > outq)
		return -errno ? -errno : -EIO;
	if ((uint32_t)inq > TCP_MAX_QUEUE || (uint32_t)outq > TCP_MAX_QUEUE)
		return -EFBIG;
	/* Our FIN is no data: left out of the lengths (not of outq_seq), as CRIU does. */
	if (fin_queued(state)) {
		outq -= outq > 0;
		unsent -= unsent > 0;
	}
	*data = malloc((size_t)inq + outq + 1);
	if (!*data)
		return -ENOMEM;
	e->inq_len = inq;
	e->outq_len = outq;
	e->has_unsq_len = true;
	e->unsq_len = unsent;
	ret = peek_queue(sk, TCP_RECV_QUEUE, &e->inq_seq, *data, inq);
	if (!ret)
		ret = peek_queue(sk, TCP_SEND_QUEUE, &e->outq_seq, *data + inq, outq);
	set_int(sk, IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_NO_QUEUE);
	if (ret)
		return ret;
	/* Set by the handshake: sock_diag's TCP_INFO serves, unless it is not over. */
	if (k && k->has_tcp_info && state != TCP_SYN_SENT) {
		ti.tcpi_options = k->tcpi_options;
		ti.tcpi_snd_wscale = k->snd_wscale;
		ti.tcpi_rcv_wscale = k->rcv_wscale;
	} else if (getsockopt(sk, IPPROTO_TCP, TCP_INFO, &ti, &l)) {
		return -errno;
	}
	e->opt_mask = ti.tcpi_options & (TCPI_OPT_TIMESTAMPS | TCPI_OPT_SACK | TCPI_OPT_WSCALE);
	e->snd_wscale = ti.tcpi_snd_wscale;
	e->has_rcv_wscale = true;
	e->rcv_wscale = ti.tcpi_rcv_wscale;
	/* In repair mode TCP_MAXSEG reads the MSS clamp. */
	if (get_u32(sk, TCP_MAXSEG, &e->mss_clamp))
		return -errno;
	e->has_timestamp = !get_u32(sk, TCP_TIMESTAMP, &e->timestamp);
	l = sizeof(w);
	if (!getsockopt(sk, IPPROTO_TCP, TCP_REPAIR_WINDOW, &w, &l)) {
		e->has_snd_wl1 = e->has_snd_wnd = e->has_max_window = true;
		e->has_rcv_wnd = e->has_rcv_wup = true;
		e->snd_wl1 = w.snd_wl1;
		e->snd_wnd = w.snd_wnd;
		e->max_window = w.max_window;
		e->rcv_wnd = w.rcv_wnd;
		e->rcv_wup = w.rcv_wup;
	}
	e->has_nodelay = e->has_cork = true;
	e->nodelay = opts->nodelay;
	e->cork = opts->cork;
	return 0;
}

/*
 * Leaving repair mode sets sk_reuse to SK_NO_REUSE (do_tcp_setsockopt()):
 * a socket with SO_REUSEADDR (an accepted one inherits its listener's)
 * gets it back, or its TIME_WAIT would hold the port against a new
 * listener with SO_REUSEADDR for a minute.
 */
static int reuse_back(int sk, bool reuse)
{
	return reuse ? set_int(sk, SOL_SOCKET, SO_REUSEADDR, 1) : 0;
}

/* The restored connection's SO_REUSEADDR, as saved. */
static bool saved_reuse(const InetSkEntry *ie)
{
	return ie->opts && ie->opts->has_reuseaddr && ie->opts->reuseaddr;
}

/* Repair mode off without a window probe: the tree resumes as if never stopped. */
static void repair_off(int sk, bool reuse)
{
	if (set_int(sk, IPPROTO_TCP, TCP_REPAIR, TCP_REPAIR_OFF_NO_WP) || reuse_back(sk, reuse))
		pr_perror("can't take socket fd %d out of repair mode", sk);
}

int files_tcp_dump(struct files_dump_ctx *fc, int sk, const struct fd_desc *d, uint32_t ino,
		   int state, const TcpOptsEntry *opts, const struct sk_known *k)
{
	struct files_dump *st = fc->st;
	TcpStreamEntry e = TCP_STREAM_ENTRY__INIT;
	cleanup_free uint8_t *data = NULL;
	struct img *img;
	struct tcp_repaired *n;
	socklen_t l = sizeof(int);
	int ret, reuse = 0;

	n = realloc(st->tcp_repaired, (st->nr_tcp_repaired + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	st->tcp_repaired = n;
	if (getsockopt(sk, SOL_SOCKET, SO_REUSEADDR, &reuse, &l))
		reuse = 0;
	if (set_int(sk, IPPROTO_TCP, TCP_REPAIR, TCP_REPAIR_ON)) {
		ret = -errno;
		pr_perror("fd %d of pid %d: TCP_REPAIR (needs CAP_NET_ADMIN)", d->fd, d->pid);
		return ret;
	}
	/*
	 * Where it is, to leave repair mode if the tree runs on; no copy kept
	 * (a tree of 10,000 connections would need as many more open files).
	 * Killed, the tree closes it in repair mode: silently.
	 */
	st->tcp_repaired[st->nr_tcp_repaired++] = (struct tcp_repaired){ d->pid, d->fd, reuse };
	ret = read_stream(sk, state, opts, k, &e, &data);
	if (ret) {
		pr_err("fd %d of pid %d: can't read TCP connection %u: %s\n", d->fd, d->pid, ino,
		       strerror(-ret));
		return ret;
	}
	img = img_open_summed(fc->written, fc->dirfd, IMG_TCP_STREAM, ino);
	if (!img)
		return -errno;
	ret = img_write_msg(img, &e.base);
	if (!ret && e.inq_len + e.outq_len)
		ret = img_write_raw(img, data, (size_t)e.inq_len + e.outq_len);
	if (img_close(img) && !ret)
		ret = -EIO;
	pr_debug("fd %d of pid %d: connection %u (%s): in %u bytes (seq %u), out %u (%u unsent, "
		 "seq %u), options %#x, mss %u\n", d->fd, d->pid, ino, files_tcp_state_name(state),
		 e.inq_len, e.inq_seq, e.outq_len, e.unsq_len, e.outq_seq, e.opt_mask, e.mss_clamp);
	return ret;
}

/* The tree is still frozen: each socket is taken again from its task, at its fd. */
void files_tcp_dump_resume(struct files_dump *st)
{
	pid_t pid = 0;
	int pidfd = -1, n = 0;

	for (int i = 0; i < st->nr_tcp_repaired; i++) {
		const struct tcp_repaired *r = &st->tcp_repaired[i];
		int sk;

		if (r->pid != pid) {
			if (pidfd >= 0)
				close(pidfd);
			pid = r->pid;
			pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
		}
		sk = pidfd < 0 ? -1 : (int)syscall(SYS_pidfd_getfd, pidfd, r->fd, 0);
		if (sk < 0) {
			pr_perror("fd %d of pid %d: can't take it out of repair mode", r->fd, r->pid);
			continue;
		}
		repair_off(sk, r->reuse);
		close(sk);
		n++;
	}
	if (pidfd >= 0)
		close(pidfd);
	if (n)
		pr_info("%d TCP connection(s) out of repair mode: the tree runs on\n", n);
}

void files_tcp_dump_free(struct files_dump *st)
{
	free(st->tcp_repaired);
	st->tcp_repaired = NULL;
	st->nr_tcp_repaired = 0;
}

/* ---- restore ---- */

static bool stream_ok(const TcpStreamEntry *e)
{
	return e->inq_len <= TCP_MAX_QUEUE && e->outq_len <= TCP_MAX_QUEUE &&
	       (!e->has_unsq_len || e->unsq_len <= e->outq_len) &&
	       e->snd_wscale <= TCP_MAX_WSCALE &&
	       (!e->has_rcv_wscale || e->rcv_wscale <= TCP_MAX_WSCALE) &&
	       e->mss_clamp > 0 && e->mss_clamp < 65536 &&
	       !(e->opt_mask & ~(TCPI_OPT_TIMESTAMPS | TCPI_OPT_SACK | TCPI_OPT_WSCALE));
}

int files_tcp_load(struct files_rst_ctx *fc, struct rfile *rf)
{
	const InetSkEntry *ie = rf->fe->isk;
	struct rtcp *t = calloc(1, sizeof(*t));
	ProtobufCMessage *m = NULL;
	struct img *img;
	int ret;

	if (!t)
		return -ENOMEM;
	rf->tcp = t;
	img = img_open_expecting(fc->unchecked, fc->dirfd, IMG_TCP_STREAM, ie->ino);
	if (!img) {
		pr_err("TCP connection %u (file %u): no tcp-stream-%x.img\n", ie->ino, ie->id,
		       ie->ino);
		return -errno ? -errno : -ENOENT;
	}
	ret = img_read_msg(img, &tcp_stream_entry__descriptor, &m);
	if (ret == 1 && !stream_ok((TcpStreamEntry *)m)) {
		protobuf_c_message_free_unpacked(m, NULL);
		ret = -EBADMSG;
	}
	if (ret == 1) {
		t->e = (TcpStreamEntry *)m;
		t->data = malloc((size_t)t->e->inq_len + t->e->outq_len + 1);
		ret = t->data ? img_read_raw(img, t->data, (size_t)t->e->inq_len + t->e->outq_len)
			      : -ENOMEM;
	} else if (ret >= 0) {
		protobuf_c_message_free_unpacked(m, NULL);
		ret = -EBADMSG;
	}
	/* The whole file against amber.sums, before anything of it is used. */
	if (img_close(img) && !ret)
		ret = -EINVAL;
	if (ret)
		pr_err("tcp-stream-%x.img (TCP connection of file %u) is malformed: %s\n", ie->ino,
		       ie->id, strerror(-ret));
	return ret;
}

void files_tcp_free(struct rfile *rf)
{
	if (!rf->tcp)
		return;
	if (rf->tcp->e)
		tcp_stream_entry__free_unpacked(rf->tcp->e, NULL);
	free(rf->tcp->data);
	free(rf->tcp);
	rf->tcp = NULL;
}

/*
 * Sends @len bytes (queues them, in repair mode) without blocking amber:
 * nothing drains a send queue before the restore ends, and the saved one
 * may have filled the send buffer (a peer not reading). On EAGAIN the
 * buffer grows by what is left, once; its size and lock are put back
 * after, so the task's own writes wait as they would have. The receive
 * queue (repair mode) takes chunks it can charge: ENOMEM halves them.
 */
static int send_nowait(int sk, const uint8_t *buf, uint32_t len)
{
	size_t chunk = 64 << 10;
	int size = 0, lock = 0, ret = 0;
	socklen_t l = sizeof(int);
	bool grown = false;

	while (len) {
		ssize_t n = send(sk, buf, min((size_t)len, chunk), MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && errno == ENOMEM && chunk > 1024) {
			chunk /= 2;
			continue;
		}
		if (n < 0 && errno == EAGAIN && !grown) {
			/* No SO_BUF_LOCK (before 5.14): the size comes back locked. */
			if (getsockopt(sk, SOL_SOCKET, SO_BUF_LOCK, &lock, &l))
				lock = -1;
			l = sizeof(int);
			if (getsockopt(sk, SOL_SOCKET, SO_SNDBUF, &size, &l) ||
			    set_int(sk, SOL_SOCKET, SO_SNDBUFFORCE, (int)min((size_t)size + len * 2u,
									  (size_t)INT_MAX / 2)))
				return -errno;
			pr_debug("send buffer of fd %d full: grown for %u more bytes\n", sk, len);
			grown = true;
			continue;
		}
		if (n <= 0) {
			ret = n < 0 ? -errno : -EIO;
			break;
		}
		buf += n;
		len -= n;
	}
	/* The kernel doubles what SO_SNDBUFFORCE is given and reports the double. */
	if (grown && (set_int(sk, SOL_SOCKET, SO_SNDBUFFORCE, size / 2) ||
		      (lock >= 0 && set_int(sk, SOL_SOCKET, SO_BUF_LOCK, lock))) && !ret)
		ret = -errno;
	return ret;
}

/* Fills queue @q in repair mode (nothing to put: not even selected). */
static int fill_queue(int sk, int q, const uint8_t *buf, uint32_t len)
{
	if (!len)
		return 0;
	if (set_int(sk, IPPROTO_TCP, TCP_REPAIR_QUEUE, q))
		return -errno;
	return send_nowait(sk, buf, len);
}

/* Repair mode binds even where a listener holds the port (SK_FORCE_REUSE). */
static int repair_bind(int sk, const InetSkEntry *ie, const struct sockaddr *src, socklen_t sl)
{
	int ret;

	if (!bind(sk, src, sl))
		return 0;
	ret = -errno;
	if (errno != EADDRNOTAVAIL ||
	    set_int(sk, ie->family == AF_INET6 ? IPPROTO_IPV6 : IPPROTO_IP,
		    ie->family == AF_INET6 ? IPV6_FREEBIND : IP_FREEBIND, 1) ||
	    bind(sk, src, sl)) {
		pr_err("TCP connection %u: bind to port %u: %s\n", ie->ino, ie->src_port,
		       strerror(-ret));
		return ret;
	}
	return 0;
}

/*
 * SYN_SENT, as CRIU restores it: the send queue's start set in repair
 * mode to the saved initial sequence number (outq_seq counts the SYN), so
 * that connect(), out of repair mode, keeps it instead of drawing a new
 * one, and sends the SYN again with it (dropped while the network lock
 * holds, retransmitted after). A SYN carries no options to repair: they
 * are negotiated again; the timestamp offset is put back in repair mode
 * after connect(), which draws a new one.
 */
static int restore_syn_sent(int sk, const InetSkEntry *ie, const TcpStreamEntry *e,
			    const struct sockaddr *src, socklen_t sl, const struct sockaddr *dst,
			    socklen_t dl)
{
	int fl = fcntl(sk, F_GETFL), ret;

	if (set_int(sk, IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_SEND_QUEUE) ||
	    set_int(sk, IPPROTO_TCP, TCP_QUEUE_SEQ, e->outq_seq - e->outq_len - 1)) {
		pr_perror("TCP connection %u: SYN_SENT: TCP_QUEUE_SEQ", ie->ino);
		return -errno;
	}
	ret = repair_bind(sk, ie, src, sl);
	if (ret)
		return ret;
	/* Not blocking amber: the handshake ends once the tree runs. */
	if (fl < 0 || set_int(sk, IPPROTO_TCP, TCP_REPAIR, TCP_REPAIR_OFF_NO_WP) ||
	    fcntl(sk, F_SETFL, fl | O_NONBLOCK) ||
	    (connect(sk, dst, dl) && errno != EINPROGRESS) || fcntl(sk, F_SETFL, fl)) {
		pr_perror("TCP connection %u: SYN_SENT: connect to port %u", ie->ino, ie->dst_port);
		return -errno;
	}
	if (e->has_timestamp &&
	    (set_int(sk, IPPROTO_TCP, TCP_REPAIR, TCP_REPAIR_ON) ||
	     set_int(sk, IPPROTO_TCP, TCP_TIMESTAMP, e->timestamp) ||
	     set_int(sk, IPPROTO_TCP, TCP_REPAIR, TCP_REPAIR_OFF_NO_WP))) {
		pr_perror("TCP connection %u: SYN_SENT: TCP_TIMESTAMP", ie->ino);
		return -errno;
	}
	if (reuse_back(sk, saved_reuse(ie))) {
		pr_perror("TCP connection %u: SYN_SENT: SO_REUSEADDR", ie->ino);
		return -errno;
	}
	if (e->has_nodelay && e->nodelay)
		set_int(sk, IPPROTO_TCP, TCP_NODELAY, 1);
	if (e->has_cork && e->cork)
		set_int(sk, IPPROTO_TCP, TCP_CORK, 1);
	return 0;
}

int files_tcp_restore(int sk, const InetSkEntry *ie, struct rtcp *t,
		      const struct sockaddr *src, socklen_t sl,
		      const struct sockaddr *dst, socklen_t dl)
{
	const TcpStreamEntry *e = t->e;
	uint32_t sent = e->outq_len - (e->has_unsq_len ? e->unsq_len : 0);
	struct tcp_repair_opt opts[4];
	int nr = 0, ret;

	if (set_int(sk, IPPROTO_TCP, TCP_REPAIR, TCP_REPAIR_ON)) {
		pr_perror("TCP connection %u: TCP_REPAIR (needs CAP_NET_ADMIN)", ie->ino);
		return -errno;
	}
	if (ie->state == TCP_SYN_SENT)
		return restore_syn_sent(sk, ie, e, src, sl, dst, dl);
	/*
	 * The queues' starts: the data put back below moves them to their
	 * saved ends. The send queue's end counts our FIN, which shutdown()
	 * queues again; the receive queue's end counts the peer's, so the
	 * restored socket acknowledges it as the old one did (its data sit
	 * one sequence number later: nothing the task sees).
	 */
	if (set_int(sk, IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_RECV_QUEUE) ||
	    set_int(sk, IPPROTO_TCP, TCP_QUEUE_SEQ, e->inq_seq - e->inq_len) ||
	    set_int(sk, IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_SEND_QUEUE) ||
	    set_int(sk, IPPROTO_TCP, TCP_QUEUE_SEQ,
		    e->outq_seq - e->outq_len - fin_queued(ie->state))) {
		pr_perror("TCP connection %u: TCP_QUEUE_SEQ", ie->ino);
		return -errno;
	}
	ret = repair_bind(sk, ie, src, sl);
	if (ret)
		return ret;
	if (connect(sk, dst, dl)) {
		pr_perror("TCP connection %u: connect in repair mode to port %u", ie->ino,
			  ie->dst_port);
		return -errno;
	}
	opts[nr++] = (struct tcp_repair_opt){ TCPOPT_MSS, e->mss_clamp };
	if (e->opt_mask & TCPI_OPT_WSCALE)
		opts[nr++] = (struct tcp_repair_opt){ TCPOPT_WINDOW,
						      e->snd_wscale | (e->rcv_wscale << 16) };
	if (e->opt_mask & TCPI_OPT_SACK)
		opts[nr++] = (struct tcp_repair_opt){ TCPOPT_SACK_PERM, 0 };
	if (e->opt_mask & TCPI_OPT_TIMESTAMPS)
		opts[nr++] = (struct tcp_repair_opt){ TCPOPT_TIMESTAMP, 0 };
	if (setsockopt(sk, IPPROTO_TCP, TCP_REPAIR_OPTIONS, opts, nr * sizeof(opts[0]))) {
		pr_perror("TCP connection %u: TCP_REPAIR_OPTIONS", ie->ino);
		return -errno;
	}
	if (e->has_timestamp && set_int(sk, IPPROTO_TCP, TCP_TIMESTAMP, e->timestamp)) {
		pr_perror("TCP connection %u: TCP_TIMESTAMP", ie->ino);
		return -errno;
	}
	ret = fill_queue(sk, TCP_RECV_QUEUE, t->data, e->inq_len);
	if (!ret)
		ret = fill_queue(sk, TCP_SEND_QUEUE, t->data + e->inq_len, sent);
	set_int(sk, IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_NO_QUEUE);
	if (ret) {
		pr_err("TCP connection %u: can't put its queued data back: %s\n", ie->ino,
		       strerror(-ret));
		return ret;
	}
	if (e->has_snd_wl1 && e->has_snd_wnd && e->has_max_window && e->has_rcv_wnd &&
	    e->has_rcv_wup) {
		struct tcp_repair_window w = { e->snd_wl1, e->snd_wnd, e->max_window, e->rcv_wnd,
					       e->rcv_wup };

		if (setsockopt(sk, IPPROTO_TCP, TCP_REPAIR_WINDOW, &w, sizeof(w))) {
			pr_perror("TCP connection %u: TCP_REPAIR_WINDOW", ie->ino);
			return -errno;
		}
	}
	/*
	 * FIN_WAIT2: our FIN, acknowledged before the dump, queued as sent
	 * (repair mode, send queue selected); it is sent again after repair
	 * mode and acknowledged again. An unacknowledged one waits for
	 * files_tcp_finish(). The peer's FIN, or the task's SHUT_RD: reads
	 * end after the queue (the kernel is not told of the peer's FIN).
	 */
	if (ie->state == TCP_FIN_WAIT2) {
		if (set_int(sk, IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_SEND_QUEUE) ||
		    shutdown(sk, SHUT_WR)) {
			pr_perror("TCP connection %u: FIN_WAIT2: shutdown in repair mode", ie->ino);
			return -errno;
		}
		set_int(sk, IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_NO_QUEUE);
	}
	if ((peer_fin(ie->state) || (ie->has_shutdown && (ie->shutdown & 1))) &&
	    shutdown(sk, SHUT_RD)) {
		pr_perror("TCP connection %u: %s: shutdown(SHUT_RD)", ie->ino,
			  files_tcp_state_name(ie->state));
		return -errno;
	}
	if (e->has_nodelay && e->nodelay)
		set_int(sk, IPPROTO_TCP, TCP_NODELAY, 1);
	if (e->has_cork && e->cork)
		set_int(sk, IPPROTO_TCP, TCP_CORK, 1);
	t->repaired = true;
	return 0;
}

int files_tcp_finish(int sk, const InetSkEntry *ie, struct rtcp *t)
{
	const TcpStreamEntry *e = t->e;
	uint32_t unsent = e->has_unsq_len ? e->unsq_len : 0;
	const uint8_t *p = t->data + e->inq_len + (e->outq_len - unsent);
	int ret;

	if (!t->repaired)
		return 0;
	/* Leaving repair mode sends a window probe: the peer learns we are back. */
	if (set_int(sk, IPPROTO_TCP, TCP_REPAIR, TCP_REPAIR_OFF) ||
	    reuse_back(sk, saved_reuse(ie))) {
		pr_perror("TCP connection %u: leaving repair mode", ie->ino);
		return -errno;
	}
	t->repaired = false;
	/* Never sent before the dump: sent now, as the task would have. */
	ret = send_nowait(sk, p, unsent);
	if (ret) {
		pr_err("TCP connection %u: sending its %u unsent bytes: %s\n", ie->ino, unsent,
		       strerror(-ret));
		return ret;
	}
	/*
	 * Our FIN not acknowledged (FIN_WAIT1, LAST_ACK, CLOSING): queued
	 * after the data, sent when the window allows and retransmitted
	 * until acknowledged, as the old socket would have. FIN_WAIT2's went
	 * back in repair mode (shutdown() again does nothing).
	 */
	if ((fin_queued(ie->state) || (ie->has_shutdown && (ie->shutdown & 2))) &&
	    ie->state != TCP_FIN_WAIT2 && shutdown(sk, SHUT_WR)) {
		pr_perror("TCP connection %u: %s: shutdown(SHUT_WR)", ie->ino,
			  files_tcp_state_name(ie->state));
		return -errno;
	}
	return 0;
}
