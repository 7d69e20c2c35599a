// SPDX-License-Identifier: MIT
/* The page server's bound on open connections (pageserver/gate.h). */
#define LOG_PREFIX "page-server: "
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "pageserver/gate.h"

struct waiting {
	int fd;
	struct sockaddr_storage ss;
};

struct ps_gate {
	int lfd, max;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct waiting *q; /* [max], a ring */
	int head, nr;
	bool serving, stopping;
	int err;		/* accept failed for good: -errno */
	unsigned long refused;
};

/* A reset, not a FIN: the client learns at once that it was not served. */
static void refuse(struct ps_gate *g, int fd)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
	/* A flood must not fill the disk with the log: the first few, then a count. */
	g->refused++;
	if (g->refused <= 10 || !(g->refused % 1000))
		pr_warn("connection refused: %d open already, the most --max-connections allows "
			"(%lu refused so far)\n", g->max, g->refused);
}

/* Transient failures of accept: wait a little and go on. */
static bool accept_retry(int err)
{
	struct timespec ts = { 0, 100 * 1000 * 1000 };

	switch (err) {
	case EINTR:
	case ECONNABORTED:
		return true;
	case EMFILE:
	case ENFILE:
	case ENOBUFS:
	case ENOMEM:
		pr_warn("accept: %s; retrying\n", strerror(err));
		nanosleep(&ts, NULL);
		return true;
	}
	return false;
}

static void *gate_thread(void *arg)
{
	struct ps_gate *g = arg;

	for (;;) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		int fd = accept4(g->lfd, (struct sockaddr *)&ss, &len, SOCK_CLOEXEC);
		int err = errno;

		pthread_mutex_lock(&g->lock);
		if (g->stopping) {
			pthread_mutex_unlock(&g->lock);
			if (fd >= 0)
				close(fd);
			return NULL;
		}
		if (fd < 0) {
			pthread_mutex_unlock(&g->lock);
			if (accept_retry(err))
				continue;
			pr_err("accept: %s\n", strerror(err));
			pthread_mutex_lock(&g->lock);
			g->err = -err;
			pthread_cond_signal(&g->cond);
			pthread_mutex_unlock(&g->lock);
			return NULL;
		}
		if (g->nr + g->serving >= g->max) {
			refuse(g, fd);
		} else {
			struct waiting *w = &g->q[(g->head + g->nr++) % g->max];

			w->fd = fd;
			w->ss = ss;
			pthread_cond_signal(&g->cond);
		}
		pthread_mutex_unlock(&g->lock);
	}
}

int ps_gate_open(int lfd, int max, struct ps_gate **gp)
{
	struct ps_gate *g = xzalloc(sizeof(*g));
	int ret;

	if (!g)
		return -ENOMEM;
	g->lfd = lfd;
	g->max = max;
	g->q = xzalloc(sizeof(*g->q) * max);
	if (!g->q) {
		free(g);
		return -ENOMEM;
	}
	pthread_mutex_init(&g->lock, NULL);
	pthread_cond_init(&g->cond, NULL);
	ret = pthread_create(&g->thread, NULL, gate_thread, g);
	if (ret) {
		pr_err("can't start the accepting thread: %s\n", strerror(ret));
		free(g->q);
		free(g);
		return -ret;
	}
	*gp = g;
	return 0;
}

int ps_gate_take(struct ps_gate *g, struct ps_conn *c)
{
	struct waiting w;

	pthread_mutex_lock(&g->lock);
	while (!g->nr && !g->err)
		pthread_cond_wait(&g->cond, &g->lock);
	if (!g->nr) {
		int err = g->err;

		pthread_mutex_unlock(&g->lock);
		return err;
	}
	w = g->q[g->head];
	g->head = (g->head + 1) % g->max;
	g->nr--;
	g->serving = true;
	pthread_mutex_unlock(&g->lock);
	ps_conn_init(c, w.fd, (struct sockaddr *)&w.ss);
	return 0;
}

void ps_gate_done(struct ps_gate *g)
{
	pthread_mutex_lock(&g->lock);
	g->serving = false;
	pthread_mutex_unlock(&g->lock);
}

void ps_gate_close(struct ps_gate *g)
{
	if (!g)
		return;
	pthread_mutex_lock(&g->lock);
	g->stopping = true;
	pthread_mutex_unlock(&g->lock);
	/* Wakes the thread's accept() (EINVAL); the socket stays ours to close. */
	shutdown(g->lfd, SHUT_RDWR);
	pthread_join(g->thread, NULL);
	for (int i = 0; i < g->nr; i++)
		close(g->q[(g->head + i) % g->max].fd);
	pthread_mutex_destroy(&g->lock);
	pthread_cond_destroy(&g->cond);
	free(g->q);
	free(g);
}
