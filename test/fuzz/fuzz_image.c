// SPDX-License-Identifier: MIT
/*
 * The image file reader, one image type at a time, in context: a known
 * good image set (template.pack, a real dump packed by pack.py) has one
 * file replaced by the input, amber.sums rewritten to match, and then
 *   1. the file is read as its type on its own: magic, every entry framed
 *      and decoded with its type's message (pagemaps: head, then entries;
 *      pipe and socket data: entry, then its raw payload), and each core's
 *      FPU state converted as the restorer's setup converts it;
 *   2. the whole set goes through rst_load(), which validates that type
 *      against the rest (the restore's own checks), as in fuzz_load.
 *
 * Input: u8 which | the file's new contents. which picks a file of the
 * template (pages files excepted) or one of the optional images the
 * template lacks (pipes-data, fifo-data, sk-queues).
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "core.pb-c.h"
#include "creds.pb-c.h"
#include "fdinfo.pb-c.h"
#include "files/files.h"
#include "fs.pb-c.h"
#include "ghost-file.pb-c.h"
#include "image/image.h"
#include "image/sums.h"
#include "image/xsave.h"
#include "inventory.pb-c.h"
#include "memfd.pb-c.h"
#include "mm.pb-c.h"
#include "pagemap.pb-c.h"
#include "pipe-data.pb-c.h"
#include "pstree.pb-c.h"
#include "restore/restore.h"
#include "sa.pb-c.h"
#include "sk-packet.pb-c.h"
#include "tty.pb-c.h"

struct kind {
	const char *prefix; /* of the file name */
	enum img_type type;
	const ProtobufCMessageDescriptor *desc;
};

static const struct kind kinds[] = {
	{ "inventory.img", IMG_INVENTORY, &inventory_entry__descriptor },
	{ "pstree.img", IMG_PSTREE, &pstree_entry__descriptor },
	{ "core-", IMG_CORE, &core_entry__descriptor },
	{ "ids-", IMG_IDS, &task_kobj_ids_entry__descriptor },
	{ "mm-", IMG_MM, &mm_entry__descriptor },
	{ "pagemap-shmem-", IMG_SHMEM_PAGEMAP, &pagemap_entry__descriptor },
	{ "pagemap-", IMG_PAGEMAP, &pagemap_entry__descriptor },
	{ "fdinfo-", IMG_FDINFO, &fdinfo_entry__descriptor },
	{ "files.img", IMG_FILES, &file_entry__descriptor },
	{ "pipes-data.img", IMG_PIPES_DATA, &pipe_data_entry__descriptor },
	{ "fifo-data.img", IMG_FIFO_DATA, &pipe_data_entry__descriptor },
	{ "sk-queues.img", IMG_SK_QUEUES, &sk_packet_entry__descriptor },
	{ "fs-", IMG_FS, &fs_entry__descriptor },
	{ "creds-", IMG_CREDS, &creds_entry__descriptor },
	{ "sigacts-", IMG_SIGACT, &sa_entry__descriptor },
	{ "ghost-file-", IMG_GHOST_FILE, &ghost_file_entry__descriptor },
	{ "tty-info.img", IMG_TTY_INFO, &tty_info_entry__descriptor },
	{ "memfd.img", IMG_MEMFD_INODE, &memfd_inode_entry__descriptor },
};

static uint8_t *tmpl;
static size_t tmpl_size;
static char names[64][64];
static int nr_names;

static const struct kind *kind_of(const char *name, unsigned long *id)
{
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		size_t l = strlen(kinds[i].prefix);

		if (strncmp(name, kinds[i].prefix, l))
			continue;
		*id = strtoul(name + l, NULL, kinds[i].type == IMG_GHOST_FILE ? 16 : 10);
		return &kinds[i];
	}
	return NULL;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *path = getenv("FUZZ_TEMPLATE") ?: FUZZ_DIR "/template.pack";
	static const char *extra[] = { "pipes-data.img", "fifo-data.img", "sk-queues.img" };
	struct dirent *de;
	unsigned long id;
	DIR *d;

	fz_init();
	tmpl = fz_read_file(path, &tmpl_size);
	if (!tmpl) {
		fprintf(stderr, "fuzz_image: no template %s\n", path);
		exit(1);
	}
	d = fdopendir(fz_fresh_dir());
	fz_unpack(dirfd(d), tmpl, tmpl_size);
	while ((de = readdir(d)) && nr_names < 60)
		if (kind_of(de->d_name, &id))
			snprintf(names[nr_names++], sizeof(names[0]), "%s", de->d_name);
	closedir(d);
	/* Sorted, so that a seed's first byte names the same file on every run. */
	qsort(names, nr_names, sizeof(names[0]), (int (*)(const void *, const void *))strcmp);
	for (int i = 0; i < 3; i++)
		if (nr_names < 64)
			snprintf(names[nr_names++], sizeof(names[0]), "%s", extra[i]);
	return 0;
}

/* What the restorer's setup does with each thread's FPU state (blob.c). */
static void fpregs(const CoreEntry *c)
{
	static uint8_t buf[1 << 16] __attribute__((aligned(64)));

	if (c->thread_info && c->thread_info->fpregs && xsave_size() + 64 <= sizeof(buf))
		xsave_from_entry(c->thread_info->fpregs, buf, xsave_size() + 64);
}

/* 1: read the file @name as its type, on its own. */
static void read_alone(int dirfd, const char *name)
{
	unsigned long id;
	const struct kind *k = kind_of(name, &id);
	bool pagemap = k->type == IMG_PAGEMAP || k->type == IMG_SHMEM_PAGEMAP;
	struct img *img = img_open(dirfd, k->type, false, id);
	ProtobufCMessage *m;
	uint8_t raw[4096];

	if (!img)
		return;
	if (pagemap && img_read_msg(img, &pagemap_head__descriptor, &m) > 0)
		protobuf_c_message_free_unpacked(m, NULL);
	while (img_read_msg(img, k->desc, &m) > 0) {
		size_t len = 0;

		if (k->type == IMG_PIPES_DATA || k->type == IMG_FIFO_DATA)
			len = ((PipeDataEntry *)m)->bytes;
		else if (k->type == IMG_SK_QUEUES)
			len = ((SkPacketEntry *)m)->length;
		else if (k->type == IMG_CORE)
			fpregs((CoreEntry *)m);
		protobuf_c_message_free_unpacked(m, NULL);
		if (len > sizeof(raw) || (len && img_read_raw(img, raw, len)))
			break;
	}
	img_tell(img);
	img_close(img);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct restore_opts ro = { .dir = fz_dir_path(), .detach = true };
	struct rst_ctx rc = { .opts = &ro, .status_fd = -1, .info_fd = -1, .lazy_fd = -1,
			      .uffd_dev_fd = -1 };
	const char *name;
	int fd;

	fz_fds_begin();

	if (!size)
		return 0;
	name = names[data[0] % nr_names];
	rc.dirfd = fz_fresh_dir();
	fz_unpack(rc.dirfd, tmpl, tmpl_size);
	fd = openat(rc.dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, data + 1, size - 1) != (ssize_t)(size - 1))
		abort();
	close(fd);
	img_sums_write(rc.dirfd);
	read_alone(rc.dirfd, name);
	if (!rst_load(&rc))
		files_max_fd(&rc.files);
	rst_free(&rc);
	close(rc.dirfd);
	fz_fds_end();
	return 0;
}
