// SPDX-License-Identifier: MIT
/* Shared by the harnesses: see common.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "common.h"
#include "pageserver/conn.h"

static char root[64], dir[96];

static void rm_tree(int dfd);

/* The scratch root goes with the process (not on a crash: then it helps). */
static void remove_root(void)
{
	int fd = open(root, O_DIRECTORY | O_RDONLY);

	if (fd >= 0)
		rm_tree(fd);
	rmdir(root);
}

void fz_init(void)
{
	const char *base = access("/dev/shm", W_OK) ? "/tmp" : "/dev/shm";
	const char *lvl = getenv("FUZZ_LOG");

	/* Errors are formatted (that code runs too) but go nowhere, unless FUZZ_LOG=N. */
	log_init(lvl ? NULL : "/dev/null", lvl ? atoi(lvl) : LOG_DEBUG, 0);
	snprintf(root, sizeof(root), "%s/amber-fuzz.%d", base, getpid());
	if (mkdir(root, 0700) && errno != EEXIST)
		abort();
	snprintf(dir, sizeof(dir), "%s/d", root);
	atexit(remove_root);
}

static void rm_tree(int dfd)
{
	DIR *d = fdopendir(dfd);
	struct dirent *de;

	if (!d) {
		close(dfd);
		return;
	}
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (!unlinkat(dirfd(d), de->d_name, 0))
			continue;
		int sub = openat(dirfd(d), de->d_name, O_DIRECTORY | O_RDONLY | O_NOFOLLOW);

		if (sub >= 0)
			rm_tree(sub);
		unlinkat(dirfd(d), de->d_name, AT_REMOVEDIR);
	}
	closedir(d);
}

int fz_fresh_dir(void)
{
	int fd = open(dir, O_DIRECTORY | O_RDONLY);

	if (fd >= 0)
		rm_tree(fd);
	rmdir(dir);
	if (mkdir(dir, 0700))
		abort();
	fd = open(dir, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		abort();
	return fd;
}

const char *fz_dir_path(void)
{
	return dir;
}

/* A name we may create: no "..", no absolute path, directories only "parent/". */
static int make_parents(int dirfd, char *name)
{
	char *p = name, *slash;

	if (!*name || name[0] == '/' || strstr(name, ".."))
		return -1;
	while ((slash = strchr(p, '/'))) {
		if (slash - p != 6 || strncmp(p, "parent", 6))
			return -1;
		*slash = 0;
		mkdirat(dirfd, name, 0700);
		*slash = '/';
		p = slash + 1;
	}
	return *p ? 0 : -1;
}

static void write_one(int dirfd, char *name, const uint8_t *data, uint32_t len)
{
	int fd;

	if (make_parents(dirfd, name))
		return;
	fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return;
	if (len == 8 && strstr(name, "pages-") && strstr(name, ".img")) {
		uint64_t size;

		memcpy(&size, data, 8);
		if (ftruncate(fd, size & 0xffffffffu))
			abort();
	} else if (len && write(fd, data, len) != (ssize_t)len) {
		abort();
	}
	close(fd);
}

int fz_unpack(int dirfd, const uint8_t *data, size_t size)
{
	size_t at = 0;
	int nr = 0;

	while (at < size) {
		char name[256];
		uint8_t nl = data[at++];
		uint32_t len;

		if (!nl || at + nl + 4 > size)
			break;
		memcpy(name, data + at, nl);
		name[nl] = 0;
		at += nl;
		memcpy(&len, data + at, 4);
		at += 4;
		if (len > size - at)
			len = size - at;
		if (!memchr(name, 0, nl)) {
			write_one(dirfd, name, data + at, len);
			nr++;
		}
		at += len;
	}
	return nr;
}

uint8_t *fz_read_file(const char *path, size_t *size)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf;
	long n;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = malloc(n ? n : 1);
	if (!buf || fread(buf, 1, n, f) != (size_t)n)
		abort();
	fclose(f);
	*size = n;
	return buf;
}

#include <pthread.h>
#include <sys/socket.h>
#include <gnutls/crypto.h>

static void *peer_main(void *arg)
{
	struct fz_peer *p = arg;
	char buf[65536];
	size_t at = 0;

	if (p->before)
		p->before(p);
	while (at < p->size) {
		ssize_t n = send(p->fd, p->data + at, p->size - at, MSG_NOSIGNAL);

		if (n <= 0)
			break;
		at += n;
	}
	shutdown(p->fd, SHUT_WR);
	while (recv(p->fd, buf, sizeof(buf), 0) > 0)
		;
	return NULL;
}

/*
 * One peer thread for the whole process, handed each input's peer in
 * turn: the sanitizers' runtime keeps a record of every thread that ever
 * existed (never reused in clang-14), so a thread per input grew a long
 * campaign's RSS by 120-160 bytes an input (RESULTS.md, fuzz_token).
 */
static pthread_mutex_t peer_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t peer_cond = PTHREAD_COND_INITIALIZER;
static struct fz_peer *peer_job; /* set by fz_peer_start, cleared when served */
static pthread_once_t peer_once = PTHREAD_ONCE_INIT;

static void *peer_thread(void *arg)
{
	for (;;) {
		struct fz_peer *p;

		pthread_mutex_lock(&peer_lock);
		while (!peer_job)
			pthread_cond_wait(&peer_cond, &peer_lock);
		p = peer_job;
		pthread_mutex_unlock(&peer_lock);
		peer_main(p);
		pthread_mutex_lock(&peer_lock);
		peer_job = NULL;
		pthread_cond_broadcast(&peer_cond);
		pthread_mutex_unlock(&peer_lock);
	}
	return NULL;
}

static void peer_spawn(void)
{
	pthread_t th;

	if (pthread_create(&th, NULL, peer_thread, NULL) || pthread_detach(th))
		abort();
}

int fz_peer_start(struct fz_peer *p, int *mine)
{
	int sv[2], big = 8 << 20;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		abort();
	for (int i = 0; i < 2; i++) {
		setsockopt(sv[i], SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof(big));
		setsockopt(sv[i], SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));
	}
	p->fd = sv[1];
	if (pthread_once(&peer_once, peer_spawn))
		abort();
	pthread_mutex_lock(&peer_lock);
	if (peer_job) /* a start without its join */
		abort();
	peer_job = p;
	pthread_cond_broadcast(&peer_cond);
	pthread_mutex_unlock(&peer_lock);
	*mine = sv[0];
	return 0;
}

void fz_peer_join(struct fz_peer *p)
{
	pthread_mutex_lock(&peer_lock);
	while (peer_job)
		pthread_cond_wait(&peer_cond, &peer_lock);
	pthread_mutex_unlock(&peer_lock);
	close(p->fd);
}

void fz_auth_mac(const uint8_t *token, size_t tlen, const uint8_t *nonce, uint8_t mac[32])
{
	static const char ctx[] = "amber-ps-auth-v1";
	uint8_t msg[32 + sizeof(ctx) - 1];

	memcpy(msg, nonce, 32);
	memcpy(msg + 32, ctx, sizeof(ctx) - 1);
	if (gnutls_hmac_fast(GNUTLS_MAC_SHA256, token, tlen, msg, sizeof(msg), mac) < 0)
		abort();
}

int fz_token_reply(int fd, uint8_t reply[8 + 32])
{
	uint8_t chal[8 + 32];
	const uint8_t *tok;
	size_t tlen, at = 0;

	fz_token_file(&tok, &tlen);
	while (at < sizeof(chal)) {
		ssize_t n = recv(fd, chal + at, sizeof(chal) - at, 0);

		if (n <= 0)
			return -1;
		at += n;
	}
	memcpy(reply, PS_AUTH_MAGIC, 8);
	fz_auth_mac(tok, tlen, chal + 8, reply + 8);
	return 0;
}

const char *fz_token_file(const uint8_t **token, size_t *len)
{
	static const char tok[] = "fuzzing-token-0123456789abcdef";
	static char path[128];
	int fd;

	if (!path[0]) {
		snprintf(path, sizeof(path), "%s/token", root);
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd < 0 || write(fd, tok, sizeof(tok) - 1) != sizeof(tok) - 1)
			abort();
		close(fd);
	}
	*token = (const uint8_t *)tok;
	*len = sizeof(tok) - 1;
	return path;
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = -1; /* not counting the directory's own fd */

	if (!d)
		abort();
	while (readdir(d))
		n++;
	closedir(d);
	return n - 2; /* . and .. */
}

static int fds_before;

void fz_fds_begin(void)
{
	fds_before = count_fds();
}

void fz_fds_end(void)
{
	int n = count_fds();

	if (n > fds_before) {
		fprintf(stderr, "fuzz: fd leak: %d fds open after this input, %d before it\n", n,
			fds_before);
		abort();
	}
}

bool fz_record(const uint8_t *data, size_t size, size_t *at, uint8_t *ctl,
	       const uint8_t **msg, uint16_t *len)
{
	if (*at + 3 > size)
		return false;
	*ctl = data[*at];
	memcpy(len, data + *at + 1, 2);
	*at += 3;
	if (*len > size - *at)
		*len = size - *at;
	*msg = data + *at;
	*at += *len;
	return true;
}
