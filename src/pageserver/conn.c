// SPDX-License-Identifier: MIT
/*
 * TCP sockets and whole-buffer I/O for page-server connections, plain or
 * through the connection's TLS session (set up in auth.c).
 */
#define LOG_PREFIX "ps-conn: "
#include <arpa/inet.h>
#include <errno.h>
#include <time.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <gnutls/gnutls.h>

#include "base/fault.h"
#include "base/log.h"
#include "pageserver/conn.h"
#include "base/util.h"

static struct addrinfo *resolve(const char *addr, int port, bool passive)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_family = AF_UNSPEC};
	struct addrinfo *res = NULL;
	char svc[16];
	int ret;

	if (port < 0 || port > 65535 || (!passive && !port)) {
		pr_err("bad port %d\n", port);
		return NULL;
	}
	hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
	snprintf(svc, sizeof(svc), "%d", port);
	ret = getaddrinfo(addr, svc, &hints, &res);
	if (ret) {
		pr_err("can't resolve %s:%d: %s\n", addr ? addr : "*", port, gai_strerror(ret));
		return NULL;
	}
	return res;
}

int ps_listen(const char *addr, int port, int *fd)
{
	struct addrinfo *res = resolve(addr, port, true), *ai;
	int one = 1, sk = -1, err = -EADDRNOTAVAIL;

	if (!res)
		return -EINVAL;
	for (ai = res; ai; ai = ai->ai_next) {
		sk = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
		if (sk < 0)
			continue;
		setsockopt(sk, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (!bind(sk, ai->ai_addr, ai->ai_addrlen) && !listen(sk, 4))
			break;
		err = -errno;
		close(sk);
		sk = -1;
	}
	freeaddrinfo(res);
	if (sk < 0) {
		pr_err("can't listen on %s:%d: %s\n", addr ? addr : "*", port, strerror(-err));
		return err;
	}
	*fd = sk;
	return 0;
}

void ps_conn_init(struct ps_conn *c, int fd, const struct sockaddr *sa)
{
	char host[INET6_ADDRSTRLEN] = "?";
	int one = 1;

	memset(c, 0, sizeof(*c));
	c->fd = fd;
	c->wire = PS_WIRE_24;
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, host, sizeof(host));
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, host,
			  sizeof(host));
	snprintf(c->peer, sizeof(c->peer), "%s", host);
	/* Requests and replies are small and synchronous: no Nagle delay. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

int ps_connect(const char *addr, int port, struct ps_conn *c)
{
	struct addrinfo *res = resolve(addr, port, false), *ai;
	int sk = -1, err = -ECONNREFUSED;

	if (!res)
		return -EINVAL;
	for (ai = res; ai; ai = ai->ai_next) {
		sk = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
		if (sk < 0)
			continue;
		if (!connect(sk, ai->ai_addr, ai->ai_addrlen)) {
			ps_conn_init(c, sk, ai->ai_addr);
			break;
		}
		err = -errno;
		close(sk);
		sk = -1;
	}
	freeaddrinfo(res);
	if (sk < 0) {
		pr_err("can't connect to page server %s:%d: %s\n", addr, port, strerror(-err));
		return err;
	}
	return 0;
}

int ps_conn_set_timeout(struct ps_conn *c, int seconds)
{
	struct timeval tv = {.tv_sec = seconds};

	c->timeout = seconds;
	if (setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) ||
	    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)))
		return -errno;
	return 0;
}

int ps_conn_send(struct ps_conn *c, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n;

		if (c->tls)
			n = gnutls_record_send(c->tls, p, len);
		else
			n = send(c->fd, p, len, MSG_NOSIGNAL);
		if (c->tls && n < 0) {
			if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
				continue;
			pr_err("%s: TLS send: %s\n", c->peer, gnutls_strerror(n));
			return -EIO;
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= n;
	}
	return 0;
}

/*
 * SO_RCVTIMEO bounds each recv(), not a message: a client trickling one
 * byte per interval (slowloris) would hold the server forever. Once a
 * message is partly in, all of it must arrive within the timeout of its
 * first part (at most twice the timeout in all).
 */
static bool conn_too_slow(const struct ps_conn *c, const struct timespec *start)
{
	struct timespec now;

	if (c->timeout <= 0)
		return false;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec - start->tv_sec >= c->timeout;
}

int ps_conn_recv(struct ps_conn *c, void *buf, size_t len)
{
	struct timespec start = { 0, 0 };
	char *p = buf;

	if (fault_injected("ps-recv-eio"))
		return -EIO;
	if (fault_injected("ps-drop"))
		return shutdown(c->fd, SHUT_RDWR), -ECONNRESET;

	while (len) {
		ssize_t n;

		if (!start.tv_sec && p != (char *)buf)
			clock_gettime(CLOCK_MONOTONIC, &start);
		else if (start.tv_sec && conn_too_slow(c, &start)) {
			pr_err("%s: too slow: a message not complete after %d s, dropped\n",
			       c->peer, c->timeout);
			return -ETIMEDOUT;
		}

		if (c->tls)
			n = gnutls_record_recv(c->tls, p, len);
		else
			n = recv(c->fd, p, len, 0);
		if (c->tls && n < 0) {
			if (n == GNUTLS_E_INTERRUPTED)
				continue;
			/* SO_RCVTIMEO shows up as EAGAIN under gnutls too */
			if (n == GNUTLS_E_AGAIN)
				return -ETIMEDOUT;
			pr_err("%s: TLS recv: %s\n", c->peer, gnutls_strerror(n));
			return -EIO;
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
		}
		if (n == 0)
			return -ECONNRESET;
		p += n;
		len -= n;
	}
	return 0;
}

/* Reads a @len-byte header; 1 on a clean EOF before its first byte. */
static int recv_hdr(struct ps_conn *c, uint8_t *hdr, size_t len)
{
	ssize_t n;

	/* The first byte tells a clean EOF (between requests) from a cut one. */
	if (c->tls) {
		do
			n = gnutls_record_recv(c->tls, hdr, 1);
		while (n == GNUTLS_E_INTERRUPTED);
		if (n == GNUTLS_E_AGAIN)
			return -ETIMEDOUT;
		if (n < 0)
			return -EIO;
	} else {
		do
			n = recv(c->fd, hdr, 1, 0);
		while (n < 0 && errno == EINTR);
		if (n < 0)
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
	}
	if (n == 0)
		return 1;
	return ps_conn_recv(c, hdr + 1, len - 1);
}

int ps_recv_iov(struct ps_conn *c, struct ps_iov *pi)
{
	uint8_t hdr[PS_HDR_MAX];
	int ret = recv_hdr(c, hdr, ps_hdr_size(c->wire));

	if (!ret)
		ps_decode(c->wire, hdr, pi);
	return ret;
}

int ps_recv_first_iov(struct ps_conn *c, struct ps_iov *pi)
{
	uint8_t hdr[PS_HDR_MAX];
	int ret = recv_hdr(c, hdr, 24);

	if (ret)
		return ret;
	c->wire = ps_wire_detect(hdr);
	if (c->wire == PS_WIRE_32) {
		ret = ps_conn_recv(c, hdr + 24, 8);
		if (ret)
			return ret;
		pr_info("%s: client speaks the 32-byte header layout\n", c->peer);
	}
	ps_decode(c->wire, hdr, pi);
	return 0;
}

int ps_send_iov(struct ps_conn *c, const struct ps_iov *pi)
{
	uint8_t hdr[PS_HDR_MAX];

	ps_encode(c->wire, pi, hdr);
	return ps_conn_send(c, hdr, ps_hdr_size(c->wire));
}

int ps_send_err(struct ps_conn *c, const struct ps_iov *req, int err)
{
	struct ps_iov e = {.cmd = PS_IOV_ERR, .vaddr = req->vaddr, .dst_id = err};

	return ps_send_iov(c, &e);
}

void ps_conn_close(struct ps_conn *c)
{
	if (c->tls) {
		gnutls_bye(c->tls, GNUTLS_SHUT_WR);
		gnutls_deinit(c->tls);
		c->tls = NULL;
	}
	if (c->tls_cred) {
		gnutls_certificate_free_credentials(c->tls_cred);
		c->tls_cred = NULL;
	}
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

bool ps_ct_equal(const void *a, const void *b, size_t len)
{
	const volatile uint8_t *x = a, *y = b;
	uint8_t diff = 0;

	for (size_t i = 0; i < len; i++)
		diff |= x[i] ^ y[i];
	return diff == 0;
}
