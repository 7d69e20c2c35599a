// SPDX-License-Identifier: MIT
/*
 * The pages image writer thread: see page_writer.h. One producer (the
 * dumper), one consumer (the thread), a ring guarded by one mutex; the
 * mutex is taken once per 256 KiB piece, so it costs nothing that shows.
 */
#define LOG_PREFIX "pages: "
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "image/image.h"
#include "base/log.h"
#include "mem/page_writer.h"
#include "base/util.h"

struct page_writer {
	struct img *img;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t filled;	/* a buffer was queued, or closing */
	pthread_cond_t drained; /* the ring is half empty, or the thread stopped */
	uint8_t *bufs;		/* PW_NR_BUFS * PW_BUF_BYTES */
	size_t len[PW_NR_BUFS];
	unsigned int head;	/* next buffer the dumper fills */
	unsigned int tail;	/* next buffer the thread writes */
	unsigned int queued;
	bool closing;
	int err;
};

static void *pw_thread(void *arg)
{
	struct page_writer *pw = arg;

	pthread_mutex_lock(&pw->lock);
	for (;;) {
		unsigned int i = pw->tail;
		int ret;

		while (!pw->queued && !pw->closing)
			pthread_cond_wait(&pw->filled, &pw->lock);
		if (!pw->queued)
			break;
		pthread_mutex_unlock(&pw->lock);
		ret = img_write_raw(pw->img, pw->bufs + (size_t)i * PW_BUF_BYTES, pw->len[i]);
		pthread_mutex_lock(&pw->lock);
		pw->tail = (i + 1) % PW_NR_BUFS;
		pw->queued--;
		if (ret) {
			pw->err = ret;
			break;
		}
		if (pw->queued == PW_NR_BUFS / 2)
			pthread_cond_signal(&pw->drained);
	}
	/* Stopped: let a waiting dumper see the error or the end. */
	pw->closing = true;
	pthread_cond_signal(&pw->drained);
	pthread_mutex_unlock(&pw->lock);
	return NULL;
}

int pw_open(struct page_writer **out, struct img *pages)
{
	struct page_writer *pw = xzalloc(sizeof(*pw));
	int ret;

	if (!pw)
		return -ENOMEM;
	pw->img = pages;
	pw->bufs = malloc((size_t)PW_NR_BUFS * PW_BUF_BYTES);
	if (!pw->bufs) {
		free(pw);
		return -ENOMEM;
	}
	pthread_mutex_init(&pw->lock, NULL);
	pthread_cond_init(&pw->filled, NULL);
	pthread_cond_init(&pw->drained, NULL);
	ret = pthread_create(&pw->thread, NULL, pw_thread, pw);
	if (ret) {
		pr_err("can't start the pages writer: %s\n", strerror(ret));
		free(pw->bufs);
		free(pw);
		return -ret;
	}
	*out = pw;
	return 0;
}

void *pw_get(struct page_writer *pw)
{
	void *buf = NULL;

	pthread_mutex_lock(&pw->lock);
	if (pw->queued == PW_NR_BUFS)
		while (pw->queued > PW_NR_BUFS / 2 && !pw->closing)
			pthread_cond_wait(&pw->drained, &pw->lock);
	if (!pw->err && !pw->closing)
		buf = pw->bufs + (size_t)pw->head * PW_BUF_BYTES;
	pthread_mutex_unlock(&pw->lock);
	return buf;
}

void pw_put(struct page_writer *pw, size_t len)
{
	pthread_mutex_lock(&pw->lock);
	pw->len[pw->head] = len;
	pw->head = (pw->head + 1) % PW_NR_BUFS;
	pw->queued++;
	pthread_cond_signal(&pw->filled);
	pthread_mutex_unlock(&pw->lock);
}

int pw_close(struct page_writer *pw)
{
	int ret;

	if (!pw)
		return 0;
	pthread_mutex_lock(&pw->lock);
	pw->closing = true;
	pthread_cond_signal(&pw->filled);
	pthread_mutex_unlock(&pw->lock);
	pthread_join(pw->thread, NULL);
	ret = pw->err;
	pthread_mutex_destroy(&pw->lock);
	pthread_cond_destroy(&pw->filled);
	pthread_cond_destroy(&pw->drained);
	free(pw->bufs);
	free(pw);
	return ret;
}
