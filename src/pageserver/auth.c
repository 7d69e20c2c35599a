// SPDX-License-Identifier: MIT
/*
 * Securing a page-server connection before the CRIU stream starts: the TLS
 * handshake (gnutls, X.509) and the shared-token challenge-response. The
 * model is described in pageserver/conn.h.
 */
#define LOG_PREFIX "ps-auth: "
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include "base/log.h"
#include "pageserver/conn.h"
#include "base/util.h"

#define AUTH_CONTEXT "amber-ps-auth-v1"
#define AUTH_MAC_LEN 32
#define AUTH_MSG_LEN (sizeof(PS_AUTH_MAGIC) - 1 + AUTH_MAC_LEN)
/* A client that has not finished the handshake by then is dropped. */
#define AUTH_TIMEOUT 10

int ps_read_token(const char *path, uint8_t *buf, size_t *len)
{
	cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	struct stat st;
	ssize_t n;

	if (fd < 0 || fstat(fd, &st)) {
		pr_perror("can't open token file %s", path);
		return -errno;
	}
	if (!S_ISREG(st.st_mode) || (st.st_mode & 077)) {
		pr_err(
		    "token file %s must be a regular file readable by its owner only (chmod 600)\n",
		    path);
		return -EPERM;
	}
	n = read(fd, buf, PS_TOKEN_MAX);
	if (n < 0) {
		pr_perror("can't read token file %s", path);
		return -errno;
	}
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		n--;
	if (n < 16) {
		pr_err("token in %s is shorter than 16 bytes\n", path);
		return -EINVAL;
	}
	*len = n;
	return 0;
}

static int auth_mac(const struct ps_sec *s, const uint8_t *nonce, uint8_t *mac)
{
	uint8_t token[PS_TOKEN_MAX], msg[PS_AUTH_NONCE + sizeof(AUTH_CONTEXT) - 1];
	size_t tlen;
	int ret = ps_read_token(s->token_file, token, &tlen);

	if (ret)
		return ret;
	memcpy(msg, nonce, PS_AUTH_NONCE);
	memcpy(msg + PS_AUTH_NONCE, AUTH_CONTEXT, sizeof(AUTH_CONTEXT) - 1);
	ret = gnutls_hmac_fast(GNUTLS_MAC_SHA256, token, tlen, msg, sizeof(msg), mac);
	explicit_bzero(token, sizeof(token));
	if (ret < 0) {
		pr_err("HMAC: %s\n", gnutls_strerror(ret));
		return -EIO;
	}
	return 0;
}

static int token_server(struct ps_conn *c, const struct ps_sec *s)
{
	uint8_t chal[sizeof(PS_AUTH_MAGIC) - 1 + PS_AUTH_NONCE], reply[AUTH_MSG_LEN];
	uint8_t want[AUTH_MAC_LEN];
	uint8_t *nonce = chal + sizeof(PS_AUTH_MAGIC) - 1;
	int32_t status = -EACCES;
	int ret;

	memcpy(chal, PS_AUTH_MAGIC, sizeof(PS_AUTH_MAGIC) - 1);
	if (getrandom(nonce, PS_AUTH_NONCE, 0) != PS_AUTH_NONCE)
		return -EIO;
	ret = auth_mac(s, nonce, want);
	if (ret)
		return ret;
	ret = ps_conn_send(c, chal, sizeof(chal));
	if (!ret)
		ret = ps_conn_recv(c, reply, sizeof(reply));
	if (ret) {
		pr_err("%s: no authentication reply (%s): refused\n", c->peer, strerror(-ret));
		return -EACCES;
	}
	if (memcmp(reply, PS_AUTH_MAGIC, sizeof(PS_AUTH_MAGIC) - 1)) {
		pr_err("%s: client did not authenticate (a stock CRIU needs a server without "
		       "--token-file/TLS): refused\n",
		       c->peer);
		ps_conn_send(c, &status, sizeof(status));
		return -EACCES;
	}
	if (!ps_ct_equal(reply + sizeof(PS_AUTH_MAGIC) - 1, want, AUTH_MAC_LEN)) {
		pr_err("%s: wrong token: refused\n", c->peer);
		ps_conn_send(c, &status, sizeof(status));
		return -EACCES;
	}
	status = 0;
	return ps_conn_send(c, &status, sizeof(status));
}

static int token_client(struct ps_conn *c, const struct ps_sec *s)
{
	uint8_t chal[sizeof(PS_AUTH_MAGIC) - 1 + PS_AUTH_NONCE], reply[AUTH_MSG_LEN];
	int32_t status;
	int ret;

	ret = ps_conn_recv(c, chal, sizeof(chal));
	if (ret) {
		pr_err("no authentication challenge from the page server (%s): does it run with "
		       "--token-file?\n",
		       strerror(-ret));
		return -EACCES;
	}
	if (memcmp(chal, PS_AUTH_MAGIC, sizeof(PS_AUTH_MAGIC) - 1)) {
		pr_err("the page server sent no amber challenge\n");
		return -EACCES;
	}
	memcpy(reply, PS_AUTH_MAGIC, sizeof(PS_AUTH_MAGIC) - 1);
	ret = auth_mac(s, chal + sizeof(PS_AUTH_MAGIC) - 1, reply + sizeof(PS_AUTH_MAGIC) - 1);
	if (!ret)
		ret = ps_conn_send(c, reply, sizeof(reply));
	if (!ret)
		ret = ps_conn_recv(c, &status, sizeof(status));
	if (ret)
		return ret;
	if (status) {
		pr_err("the page server refused our token\n");
		return -EACCES;
	}
	return 0;
}

static int tls_setup(struct ps_conn *c, const struct ps_sec *s, bool server, const char *host)
{
	gnutls_certificate_credentials_t cred;
	gnutls_session_t sess;
	int ret;

	if (gnutls_certificate_allocate_credentials(&cred) < 0)
		return -ENOMEM;
	c->tls_cred = cred;
	if (s->tls_cert || s->tls_key) {
		ret = gnutls_certificate_set_x509_key_file(cred, s->tls_cert, s->tls_key,
							   GNUTLS_X509_FMT_PEM);
		if (ret < 0) {
			pr_err("can't load %s/%s: %s\n", s->tls_cert, s->tls_key,
			       gnutls_strerror(ret));
			return -EINVAL;
		}
	} else if (server) {
		pr_err("TLS server needs --tls-cert and --tls-key\n");
		return -EINVAL;
	}
	if (s->tls_cacert)
		ret = gnutls_certificate_set_x509_trust_file(cred, s->tls_cacert,
							     GNUTLS_X509_FMT_PEM);
	else
		ret = server ? 1 : gnutls_certificate_set_x509_system_trust(cred);
	if (ret <= 0) {
		pr_err("can't load CA certificates %s: %s\n", s->tls_cacert ?: "(system)",
		       ret ? gnutls_strerror(ret) : "none found");
		return -EINVAL;
	}
	if (gnutls_init(&sess, server ? GNUTLS_SERVER : GNUTLS_CLIENT) < 0)
		return -ENOMEM;
	c->tls = sess;
	gnutls_set_default_priority(sess);
	gnutls_credentials_set(sess, GNUTLS_CRD_CERTIFICATE, cred);
	if (server && s->tls_cacert) {
		/* Mutual TLS: only clients holding a certificate of our CA. */
		gnutls_certificate_server_set_request(sess, GNUTLS_CERT_REQUIRE);
		gnutls_session_set_verify_cert(sess, NULL, 0);
	} else if (!server) {
		gnutls_session_set_verify_cert(sess, s->tls_no_cn_verify ? NULL : host, 0);
	}
	gnutls_transport_set_int(sess, c->fd);
	gnutls_handshake_set_timeout(sess, AUTH_TIMEOUT * 1000);
	do
		ret = gnutls_handshake(sess);
	while (ret < 0 && !gnutls_error_is_fatal(ret));
	if (ret < 0) {
		pr_err("%s: TLS handshake failed: %s\n", c->peer, gnutls_strerror(ret));
		/* No close_notify on a session that never started. */
		gnutls_deinit(sess);
		c->tls = NULL;
		return -EACCES;
	}
	pr_info("%s: TLS session up\n", c->peer);
	return 0;
}

int ps_conn_server_secure(struct ps_conn *c, const struct ps_sec *s)
{
	int ret;

	ps_conn_set_timeout(c, AUTH_TIMEOUT);
	if (s->tls) {
		ret = tls_setup(c, s, true, NULL);
		if (ret)
			return ret;
	}
	if (s->token_file) {
		ret = token_server(c, s);
		if (ret)
			return ret;
	}
	return 0;
}

int ps_conn_client_secure(struct ps_conn *c, const struct ps_sec *s, const char *host)
{
	int ret;

	ps_conn_set_timeout(c, AUTH_TIMEOUT);
	if (s->tls) {
		ret = tls_setup(c, s, false, host);
		if (ret)
			return ret;
	}
	if (s->token_file) {
		ret = token_client(c, s);
		if (ret)
			return ret;
	}
	return 0;
}
