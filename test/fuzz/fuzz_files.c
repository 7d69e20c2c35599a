// SPDX-License-Identifier: MIT
/*
 * The loaders of the newer image types, each inside a real dump that has
 * it: test/fuzz/templates/<test>.pack, one per zdtm test (seed.sh packs
 * them): pty pairs and their queued data (tty-info, tty-data), TCP
 * connections (tcp-stream, inet sockets in files.img), netlink sockets,
 * POSIX and flock locks (filelocks), seccomp filters, a tree in its own
 * pid, UTS, IPC and network namespaces (pstree, ids, utsns, ipcns-var,
 * netdev), sockets' queues and fds in flight (sk-queues), epoll, inotify,
 * fanotify, timerfd, signalfd, pidfd, POSIX timers and socket options.
 * fuzz_image does the same on one older template (the memfd test's dump).
 *
 * One file of the template is replaced by the input, amber.sums rewritten
 * to match, and the set goes through rst_load() and files_max_fd(), as
 * `amber restore` does before it forks. Nothing forks, maps or opens the
 * files an image names.
 *
 * Input: u8 template (sorted by name) | u8 file (of that template, sorted,
 * pages files and amber.sums excepted) | the file's new contents.
 *
 * Entry mode, the template byte's top bit set: the input after the file
 * byte is u8 k | one message, which replaces the k-th length-framed entry
 * of the template's file (its magics and the other entries kept, the
 * frame's length made right), so that mutations reach each type's own
 * checks instead of breaking the framing. A file whose entries can't be
 * walked (raw payloads between them) takes the message as a new entry at
 * the end.
 */
#include <dirent.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "files/files.h"
#include "image/sums.h"
#include "restore/restore.h"

#define MAX_TEMPLATES 32
#define MAX_FILES 64

struct tmpl {
	char name[64];
	uint8_t *data;
	size_t size;
	char files[MAX_FILES][64];
	int nr_files;
};

static struct tmpl tmpls[MAX_TEMPLATES];
static int nr_tmpls;

static int by_name(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* The files of template @t, found by unpacking it once. */
static void list_files(struct tmpl *t)
{
	DIR *d = fdopendir(fz_fresh_dir());
	struct dirent *de;

	fz_unpack(dirfd(d), t->data, t->size);
	while ((de = readdir(d)) && t->nr_files < MAX_FILES) {
		/* amber.sums is rewritten for each input anyway. */
		if (de->d_type != DT_REG || !strncmp(de->d_name, "pages-", 6) ||
		    !strcmp(de->d_name, "amber.sums") || strlen(de->d_name) >= sizeof(t->files[0]))
			continue;
		strcpy(t->files[t->nr_files++], de->d_name);
	}
	closedir(d);
	/* Sorted, so that a seed's second byte names the same file on every run. */
	qsort(t->files, t->nr_files, sizeof(t->files[0]), by_name);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *dir = getenv("FUZZ_TEMPLATES") ?: FUZZ_DIR "/templates";
	char names[MAX_TEMPLATES][64];
	struct dirent *de;
	int n = 0;
	DIR *d;

	fz_init();
	d = opendir(dir);
	if (!d) {
		fprintf(stderr, "fuzz_files: no templates in %s\n", dir);
		exit(1);
	}
	while ((de = readdir(d)) && n < MAX_TEMPLATES) {
		size_t l = strlen(de->d_name);

		if (l > 5 && l < sizeof(names[0]) && !strcmp(de->d_name + l - 5, ".pack"))
			strcpy(names[n++], de->d_name);
	}
	closedir(d);
	qsort(names, n, sizeof(names[0]), by_name);
	for (int i = 0; i < n; i++) {
		struct tmpl *t = &tmpls[nr_tmpls];
		char path[4096];

		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		snprintf(t->name, sizeof(t->name), "%s", names[i]);
		t->data = fz_read_file(path, &t->size);
		if (!t->data)
			continue;
		list_files(t);
		if (t->nr_files)
			nr_tmpls++;
	}
	if (!nr_tmpls) {
		fprintf(stderr, "fuzz_files: no usable template in %s\n", dir);
		exit(1);
	}
	return 0;
}

/*
 * @name's template bytes (in @dirfd) with entry @k's message replaced by
 * @msg, framed: into @out (malloc'ed), its length returned.
 */
static size_t reframe(int dirfd, const char *name, unsigned k, const uint8_t *msg, size_t mlen,
		      uint8_t **out)
{
	/* Every image opens with two magics; inventory.img with one. */
	size_t hdr = strcmp(name, "inventory.img") ? 8 : 4, pos, at, len = 0, end;
	bool found = false;
	static uint8_t orig[1 << 16];
	uint8_t *o;
	ssize_t n;
	int fd;

	fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	n = fd < 0 ? -1 : read(fd, orig, sizeof(orig));
	if (fd >= 0)
		close(fd);
	if (n < (ssize_t)hdr)
		n = hdr, memset(orig, 0, hdr);
	/* Walk to entry k; stop at the end or at framing that doesn't fit. */
	for (pos = hdr; pos + 4 <= (size_t)n; pos += 4 + len) {
		uint32_t l;

		memcpy(&l, orig + pos, 4);
		len = l;
		if (len > (size_t)n - pos - 4)
			break;
		if (!k--) {
			found = true;
			break;
		}
	}
	/* Not there: the message goes in where the walk stopped, the rest kept. */
	at = pos < (size_t)n ? pos : (size_t)n;
	end = found ? at + 4 + len : at;
	o = malloc(at + 4 + mlen + (n - end));
	if (!o)
		abort();
	memcpy(o, orig, at);
	memcpy(o + at, &(uint32_t){ (uint32_t)mlen }, 4);
	memcpy(o + at + 4, msg, mlen);
	memcpy(o + at + 4 + mlen, orig + end, n - end);
	*out = o;
	return at + 4 + mlen + (n - end);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* The options the templates were dumped with: the checks behind them run. */
	struct restore_opts ro = { .dir = fz_dir_path(), .detach = true, .file_locks = true,
				   .tcp_established = true, .ext_unix_sk = true };
	struct rst_ctx rc = { .opts = &ro, .status_fd = -1, .info_fd = -1, .lazy_fd = -1,
			      .uffd_dev_fd = -1 };
	const struct tmpl *t;
	const char *name;
	uint8_t *buf = NULL;
	size_t len;
	int fd;

	fz_fds_begin();

	if (size < 2 || ((data[0] & 0x80) && size < 3))
		return 0;
	t = &tmpls[(data[0] & 0x7f) % nr_tmpls];
	name = t->files[data[1] % t->nr_files];
	rc.dirfd = fz_fresh_dir();
	fz_unpack(rc.dirfd, t->data, t->size);
	if (data[0] & 0x80)
		len = reframe(rc.dirfd, name, data[2], data + 3, size - 3, &buf);
	else
		len = size - 2;
	fd = openat(rc.dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, buf ?: data + 2, len) != (ssize_t)len)
		abort();
	close(fd);
	free(buf);
	img_sums_write(rc.dirfd);
	if (!rst_load(&rc))
		files_max_fd(&rc.files);
	rst_free(&rc);
	close(rc.dirfd);
	fz_fds_end();
	return 0;
}
