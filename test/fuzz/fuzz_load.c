// SPDX-License-Identifier: MIT
/*
 * The whole image-set loader: rst_load(), everything `amber restore`
 * checks before it forks (amber.sums, magics, framing, the tree, cores,
 * VMAs, pagemap chains, fd tables, shared memory, memfds), then
 * files_max_fd() as restore_run() calls next. Never past validation:
 * nothing here forks, maps, or opens the files an image names.
 *
 * Input: u8 flags | a packed image set (common.h).
 *   flags & 1: write amber.sums over the unpacked set first, so the
 *              structural checks behind the checksums are reached
 *   flags & 2: load as for --lazy-pages with the pages "handed over"
 *              (pages_src none), as the post-copy daemon does
 */
#include <stdlib.h>
#include <unistd.h>

#include "common.h"
#include "files/files.h"
#include "image/sums.h"
#include "restore/restore.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fz_init();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct pm_pages_src none = { .none = true };
	struct restore_opts ro = { .dir = fz_dir_path(), .detach = true };
	struct rst_ctx rc = { .opts = &ro, .status_fd = -1, .info_fd = -1, .lazy_fd = -1,
			      .uffd_dev_fd = -1 };

	fz_fds_begin();

	if (!size)
		return 0;
	rc.dirfd = fz_fresh_dir();
	fz_unpack(rc.dirfd, data + 1, size - 1);
	if (data[0] & 1)
		img_sums_write(rc.dirfd);
	if (data[0] & 2) {
		ro.lazy = true;
		rc.pages_src = &none;
	}
	if (!rst_load(&rc))
		files_max_fd(&rc.files);
	rst_free(&rc);
	close(rc.dirfd);
	fz_fds_end();
	return 0;
}
