// SPDX-License-Identifier: MIT
/* amber.sums: whole-file checksums of the protobuf images (image_sums.h). */
#define LOG_PREFIX "sums: "
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image/image.h"
#include "image/sums.h"
#include "base/fault.h"
#include "base/log.h"
#include "base/util.h"

#define SUMS_HEADER    "amber-sums 2\n"
#define SUMS_HEADER_V1 "amber-sums 1\n" /* FNV-1a 64: checked, no longer written */
#define SUMS_MAX       (1u << 20) /* far more than any dump's list of images */
#define FNV_OFFSET     0xcbf29ce484222325ULL
#define FNV_PRIME      0x100000001b3ULL

/* Version 1's checksum: FNV-1a 64 of @len more bytes after @h. */
static uint64_t fnv1a(uint64_t h, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * FNV_PRIME;
	return h;
}

/* Checksum (of amber.sums @version) and size of image @name in @dirfd. */
static int sum_file(int dirfd, const char *name, int version, uint64_t *hash, uint64_t *size)
{
	cleanup_close int fd = img_file_open(dirfd, name, O_RDONLY);
	uint64_t buf[(64 << 10) / sizeof(uint64_t)];
	uint64_t fnv = FNV_OFFSET, n = 0;
	struct img_sum_ctx s;

	if (fd < 0)
		return fd;
	img_sum_init(&s);
	for (;;) {
		ssize_t r = read(fd, buf, sizeof(buf));

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			break;
		if (version == 1)
			fnv = fnv1a(fnv, buf, r);
		else
			img_sum_update(&s, buf, r);
		n += r;
	}
	*hash = version == 1 ? fnv : img_sum_end(&s);
	*size = n;
	return 0;
}

static bool is_image(const char *name)
{
	size_t l = strlen(name);

	return l > 4 && !strcmp(name + l - 4, ".img");
}

/* amber's own dumps leave pages out: each pagemap run has its checksum. */
static bool listed_name(const char *name, bool pages)
{
	return is_image(name) && (pages || strncmp(name, "pages-", 6));
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void free_names(char **names, int nr)
{
	for (int i = 0; i < nr; i++)
		free(names[i]);
	free(names);
}

/* The names of the images to list, sorted. */
static int list_images(int dirfd, bool pages, char ***out)
{
	int fd = fcntl(dirfd, F_DUPFD_CLOEXEC, 0), nr = 0;
	char **names = NULL;
	struct dirent *de;
	DIR *d;

	if (fd < 0 || !(d = fdopendir(fd))) {
		pr_perror("can't list the image directory");
		if (fd >= 0)
			close(fd);
		return -EIO;
	}
	rewinddir(d);
	while ((de = readdir(d))) {
		char **n;

		if (!listed_name(de->d_name, pages))
			continue;
		n = xrealloc_array(names, nr + 1, sizeof(*names));
		if (!n || !(n[nr] = strdup(de->d_name))) {
			free_names(n ? n : names, nr);
			closedir(d);
			return -ENOMEM;
		}
		names = n;
		nr++;
	}
	closedir(d);
	if (nr)
		qsort(names, nr, sizeof(*names), cmp_names);
	*out = names;
	return nr;
}

static int cmp_sum_names(const void *a, const void *b)
{
	return strcmp(((const struct img_sum *)a)->name, ((const struct img_sum *)b)->name);
}

static int cmp_sum_key(const void *key, const void *e)
{
	return strcmp(key, ((const struct img_sum *)e)->name);
}

/* @name's checksum as written, if @known has it once (twice: written again, not trusted). */
static const struct img_sum *known_sum(const struct img_sums *known, const char *name)
{
	const struct img_sum *e;

	if (!known || !known->nr)
		return NULL;
	e = bsearch(name, known->v, known->nr, sizeof(*e), cmp_sum_key);
	if (!e || (e > known->v && !strcmp(e[-1].name, name)) ||
	    (e + 1 < known->v + known->nr && !strcmp(e[1].name, name)))
		return NULL;
	return e;
}

/* Deferred fsyncs are taken this many images at a time, each holding an fd. */
/* Deferred fsyncs are taken this many images at a time, each holding an fd... */
#define SYNC_BATCH 256
/* ...by this many threads: the block layer merges their cache flushes. */
#define SYNC_THREADS 8

struct sync_batch {
	const int *fds;
	int n;
	int next;   /* the next of fds to fsync (atomic) */
	int err;    /* the first failure, -errno (atomic) */
	int err_at; /* its index, set by the thread that failed first */
};

static void *fsync_some(void *arg)
{
	struct sync_batch *b = arg;
	int i, err, none;

	while ((i = __atomic_fetch_add(&b->next, 1, __ATOMIC_RELAXED)) < b->n &&
	       !__atomic_load_n(&b->err, __ATOMIC_RELAXED)) {
		err = 0;
		if (fault_injected("image-sync"))
			err = -EIO; /* a write-back error, as fsync() reports it */
		else if (fsync(b->fds[i]) && errno != EINVAL && errno != EROFS)
			err = -errno;
		none = 0;
		if (err && __atomic_compare_exchange_n(&b->err, &none, err, false, __ATOMIC_RELAXED,
						       __ATOMIC_RELAXED))
			b->err_at = i;
	}
	return NULL;
}

/* fsync()s @n fds with up to SYNC_THREADS threads: 0, or -errno with *@failed its index. */
static int fsync_all(const int *fds, int n, int *failed)
{
	struct sync_batch b = { .fds = fds, .n = n };
	pthread_t tid[SYNC_THREADS - 1];
	int started = 0;

	/* A thread that can't start leaves its share to the others. */
	while (started < SYNC_THREADS - 1 && started < n - 1 &&
	       !pthread_create(&tid[started], NULL, fsync_some, &b))
		started++;
	fsync_some(&b);
	for (int i = 0; i < started; i++)
		pthread_join(tid[i], NULL);
	*failed = b.err_at;
	return b.err;
}

/*
 * The fsyncs img_close() left (struct img_sums' defer_sync), each through
 * a new fd: a writeback error no fd has reported yet is reported to it.
 * A batch's data is waited for first, so that ext4's extent conversion at
 * write completion is logged before the batch's first fsync commits the
 * journal; then the batch is fsynced by several threads, since each fsync
 * also flushes the disk's cache and concurrent flushes are merged.
 */
static int sync_deferred(int dirfd, const struct img_sums *written)
{
	int fds[SYNC_BATCH], ret = 0, failed = 0;
	uint64_t t0 = mono_ns();

	for (int at = 0; at < written->nr && !ret; at += SYNC_BATCH) {
		int n = min(written->nr - at, SYNC_BATCH), opened = 0;

		for (int i = 0; i < n && !ret; i++, opened++) {
			fds[i] = img_file_open(dirfd, written->v[at + i].name, O_RDONLY);
			failed = i;
			if (fds[i] < 0)
				ret = fds[i];
			else /* its errors are the fsync's to report */
				(void)sync_file_range(fds[i], 0, 0, SYNC_FILE_RANGE_WAIT_BEFORE |
								    SYNC_FILE_RANGE_WRITE |
								    SYNC_FILE_RANGE_WAIT_AFTER);
		}
		if (!ret)
			ret = fsync_all(fds, n, &failed);
		if (ret)
			pr_err("can't sync image %s: %s\n", written->v[at + failed].name,
			       strerror(-ret));
		for (int k = 0; k < opened; k++)
			if (fds[k] >= 0)
				close(fds[k]);
	}
	if (!ret)
		pr_info("%d images synced in %" PRIu64 " ms\n", written->nr,
			(mono_ns() - t0) / 1000000);
	return ret;
}

static int sums_write(int dirfd, bool pages, struct img_sums *known)
{
	char **names = NULL, line[128];
	cleanup_close int fd = -1;
	struct img_sum_ctx all;
	int nr, ret = 0;

	if (known && known->defer_sync) {
		ret = sync_deferred(dirfd, known);
		if (ret)
			return ret;
	}
	nr = list_images(dirfd, pages, &names);
	if (nr < 0)
		return nr;
	if (known && known->nr)
		qsort(known->v, known->nr, sizeof(*known->v), cmp_sum_names);
	fd = img_file_open(dirfd, IMG_SUMS_NAME, O_WRONLY);
	if (fd < 0) {
		ret = fd;
		pr_perror("can't create %s", IMG_SUMS_NAME);
		goto out;
	}
	img_sum_init(&all);
	img_sum_update(&all, SUMS_HEADER, strlen(SUMS_HEADER));
	ret = write_full(fd, SUMS_HEADER, strlen(SUMS_HEADER));
	for (int i = 0; i < nr && !ret; i++) {
		const struct img_sum *k = known_sum(known, names[i]);
		uint64_t h, size;
		int len;

		if (k) {
			h = k->hash;
			size = k->size;
		} else {
			ret = sum_file(dirfd, names[i], 2, &h, &size);
		}
		if (ret) {
			pr_err("can't read back %s: %s\n", names[i], strerror(-ret));
			break;
		}
		len = snprintf(line, sizeof(line), "%016" PRIx64 " %" PRIu64 " %s\n", h, size,
			       names[i]);
		if (len >= (int)sizeof(line)) {
			ret = -ENAMETOOLONG;
			break;
		}
		img_sum_update(&all, line, len);
		ret = write_full(fd, line, len);
	}
	if (!ret) {
		int len = snprintf(line, sizeof(line), "end %016" PRIx64 "\n",
				   img_sum_end(&all));

		ret = write_full(fd, line, len);
	}
	if (!ret && fsync(fd) && errno != EINVAL && errno != EROFS)
		ret = -errno;
	if (ret)
		pr_err("can't write %s: %s\n", IMG_SUMS_NAME, strerror(-ret));
out:
	free_names(names, nr);
	return ret;
}

int img_sums_write(int dirfd)
{
	return sums_write(dirfd, false, NULL);
}

int img_sums_write_known(int dirfd, struct img_sums *written)
{
	return sums_write(dirfd, false, written);
}

int img_sums_write_all(int dirfd)
{
	return sums_write(dirfd, true, NULL);
}

/* @name's expected sum, kept for its loader to check. */
static int defer_check(struct img_sums *later, const char *name, uint64_t hash, uint64_t size)
{
	if (later->nr == later->cap) {
		int cap = later->cap ? 2 * later->cap : 256;
		struct img_sum *v = xrealloc_array(later->v, cap, sizeof(*v));

		if (!v)
			return -ENOMEM;
		later->v = v;
		later->cap = cap;
	}
	later->v[later->nr] = (struct img_sum){ .hash = hash, .size = size };
	snprintf(later->v[later->nr].name, sizeof(later->v[0].name), "%s", name);
	later->nr++;
	return 0;
}

/* Checks one "<hash> <size> <name>" line against the file it names, or defers it to @later. */
static int check_line(int dirfd, int version, const char *text, int lineno,
		      const char *prefix, struct img_sums *later)
{
	char name[64], line[128];
	uint64_t want_h, want_size, h, size;
	int n, end = 0, ret;

	/*
	 * sscanf() takes the length of all its input first: one line copied
	 * out, not the rest of a list of thousands (each line ends in '\n').
	 */
	n = strchr(text, '\n') - text + 1;
	if (n >= (int)sizeof(line)) {
		pr_err("%s: line %d is malformed\n", IMG_SUMS_NAME, lineno);
		return -EINVAL;
	}
	memcpy(line, text, n);
	line[n] = '\0';
	n = sscanf(line, "%16" SCNx64 " %" SCNu64 " %63s%n", &want_h, &want_size, name, &end);
	if (n != 3 || line[end] != '\n' || !is_image(name) || strchr(name, '/')) {
		pr_err("%s: line %d is malformed\n", IMG_SUMS_NAME, lineno);
		return -EINVAL;
	}
	if (later && version == 2 && !strncmp(name, prefix, strlen(prefix)))
		return defer_check(later, name, want_h, want_size);
	ret = sum_file(dirfd, name, version, &h, &size);
	if (ret == -ENOENT) {
		pr_err("image %s is missing (listed in %s)\n", name, IMG_SUMS_NAME);
		return -ENOENT;
	}
	if (ret) {
		pr_err("can't read image %s: %s\n", name, strerror(-ret));
		return ret;
	}
	if (size != want_size) {
		pr_err("image %s has %" PRIu64 " bytes, the dump wrote %" PRIu64
		       ": truncated or corrupt\n", name, size, want_size);
		return -EINVAL;
	}
	if (h != want_h) {
		pr_err("image %s fails its checksum: corrupt\n", name);
		return -EINVAL;
	}
	return 0;
}

int img_sums_check(int dirfd)
{
	return img_sums_check_but(dirfd, NULL, NULL);
}

int img_sums_check_but(int dirfd, const char *prefix, struct img_sums *later)
{
	size_t len;
	int sfd = img_file_open(dirfd, IMG_SUMS_NAME, O_RDONLY);
	cleanup_free char *text = NULL;
	uint64_t want, all = FNV_OFFSET;
	struct img_sum_ctx list_v2;
	char *p, *nl;
	int lineno = 1, nr = 0, version, ret;

	if (sfd < 0 && sfd != -ENOENT)
		return sfd == -EPERM || sfd == -ELOOP || sfd == -ENXIO ? -EINVAL : sfd;
	errno = -sfd;
	if (sfd >= 0)
		text = read_fd_all(sfd, &len);
	if (!text && errno == ENOENT) {
		pr_warn("no %s: images are checked for structure only, not for corruption\n",
			IMG_SUMS_NAME);
		return 0;
	}
	if (!text) {
		pr_perror("can't read %s", IMG_SUMS_NAME);
		return -EIO;
	}
	/* Both headers have the same length: the lines start at the same offset. */
	if (!strncmp(text, SUMS_HEADER, strlen(SUMS_HEADER)))
		version = 2;
	else if (!strncmp(text, SUMS_HEADER_V1, strlen(SUMS_HEADER_V1)))
		version = 1;
	else
		version = 0;
	if (len > SUMS_MAX || strlen(text) != len || !version) {
		pr_err("%s is corrupt: bad header, size or contents\n", IMG_SUMS_NAME);
		return -EINVAL;
	}
	/* The list itself first: a damaged list must not pass as a short one. */
	img_sum_init(&list_v2);
	p = text;
	while ((nl = strchr(p, '\n')) && strncmp(p, "end ", 4)) {
		if (version == 1)
			all = fnv1a(all, p, nl - p + 1);
		else
			img_sum_update(&list_v2, p, nl - p + 1);
		p = nl + 1;
	}
	if (version == 2)
		all = img_sum_end(&list_v2);
	if (!nl || sscanf(p, "end %16" SCNx64, &want) != 1 || want != all || nl[1]) {
		pr_err("%s is corrupt or truncated: its own checksum does not match\n",
		       IMG_SUMS_NAME);
		return -EINVAL;
	}
	for (p = text + strlen(SUMS_HEADER); strncmp(p, "end ", 4); p = strchr(p, '\n') + 1) {
		ret = check_line(dirfd, version, p, ++lineno, prefix, later);
		if (ret)
			return ret;
		nr++;
	}
	if (later && later->nr) {
		qsort(later->v, later->nr, sizeof(*later->v), cmp_sum_names);
		/* Read whole, a name listed twice was checked against both sums. */
		for (int i = 1; i < later->nr; i++)
			if (!strcmp(later->v[i - 1].name, later->v[i].name)) {
				pr_err("%s lists %s twice\n", IMG_SUMS_NAME, later->v[i].name);
				return -EINVAL;
			}
		nr -= later->nr;
	}
	pr_info("%d image(s) match %s (version %d)%s\n", nr, IMG_SUMS_NAME, version,
		later && later->nr ? ", the rest checked as loaded" : "");
	return 0;
}
