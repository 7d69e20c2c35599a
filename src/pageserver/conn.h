/* SPDX-License-Identifier: MIT */
#ifndef AMBER_PS_CONN_H
#define AMBER_PS_CONN_H

/*
 * One page-server connection: a TCP socket, optionally wrapped in a TLS
 * session (gnutls, X.509), optionally authenticated by a shared token.
 * Every byte of the page-server protocol goes through ps_conn_send/recv,
 * which move whole buffers or fail.
 *
 * Security modes (ps_sec), chosen by the server and matched by the client:
 *   none   plain CRIU protocol: stock CRIU can connect; the server says on
 *          stderr that it is unauthenticated.
 *   token  before the CRIU stream, a challenge-response: the server sends
 *          "AMBRPS01" + 32 random bytes, the client answers "AMBRPS01" +
 *          HMAC-SHA256(token, nonce || "amber-ps-auth-v1"), the server
 *          compares in constant time and replies an int32 (0 or -EACCES).
 *          The token never crosses the wire and a reply cannot be replayed
 *          (fresh nonce). The stream itself stays in clear: use TLS when the
 *          network is not trusted.
 *   tls    TLS 1.2+/1.3 first; the server presents --tls-cert/--tls-key and,
 *          given --tls-cacert, requires a client certificate signed by that
 *          CA. The client verifies the server against its --tls-cacert (and
 *          the address as host name unless tls_no_cn_verify). A token, if
 *          also given, is checked inside the TLS session.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pageserver/proto.h"

struct ps_sec {
	const char *token_file;
	bool tls;
	const char *tls_cert, *tls_key, *tls_cacert;
	bool tls_no_cn_verify;
};

struct ps_conn {
	int fd;
	void *tls;	/* gnutls_session_t, NULL for plain TCP */
	void *tls_cred; /* gnutls_certificate_credentials_t */
	enum ps_wire wire;
	int timeout; /* seconds, ps_conn_set_timeout(): also bounds one whole message */
	char peer[64];
};

#define PS_AUTH_MAGIC "AMBRPS01"
#define PS_AUTH_NONCE 32
#define PS_TOKEN_MAX  4096

static inline bool ps_sec_none(const struct ps_sec *s)
{
	return !s->token_file && !s->tls;
}

/* A listening TCP socket on @addr (NULL: every address) and @port (0: any free one). */
int ps_listen(const char *addr, int port, int *fd);
/*
 * @c for the accepted socket @fd of the peer @sa (plain; secure it with
 * ps_conn_server_secure). The page server accepts in pageserver/gate.c.
 */
struct sockaddr;
void ps_conn_init(struct ps_conn *c, int fd, const struct sockaddr *sa);
int ps_connect(const char *addr, int port, struct ps_conn *c);

/* TLS handshake and/or token check, per @s. 0, or -EACCES and a log line. */
int ps_conn_server_secure(struct ps_conn *c, const struct ps_sec *s);
int ps_conn_client_secure(struct ps_conn *c, const struct ps_sec *s, const char *host);

int ps_conn_send(struct ps_conn *c, const void *buf, size_t len);
/* 0, -ECONNRESET when the peer closed the connection, or -errno. */
int ps_conn_recv(struct ps_conn *c, void *buf, size_t len);
/* A header in the connection's layout; 1 on a clean EOF before it. */
int ps_recv_iov(struct ps_conn *c, struct ps_iov *pi);
/* Like ps_recv_iov, but first guesses the client's layout (ps_wire_detect). */
int ps_recv_first_iov(struct ps_conn *c, struct ps_iov *pi);
int ps_send_iov(struct ps_conn *c, const struct ps_iov *pi);
/* Sends PS_IOV_ERR with @err (positive errno), echoing the request's vaddr. */
int ps_send_err(struct ps_conn *c, const struct ps_iov *req, int err);
/* Seconds a peer may stay silent in one recv before it is dropped. */
int ps_conn_set_timeout(struct ps_conn *c, int seconds);
void ps_conn_close(struct ps_conn *c);

/* Constant-time equality, so a wrong token leaks no prefix length. */
bool ps_ct_equal(const void *a, const void *b, size_t len);
/* Reads a token file: must be a regular file not readable by others. */
int ps_read_token(const char *path, uint8_t *buf, size_t *len);

#endif
