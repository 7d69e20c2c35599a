// SPDX-License-Identifier: GPL-2.0
/* An open file whose name was unlinked: contents and position survive. */
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "zdtm.h"

#define SIZE (256UL << 10)
#define POS 12344

int main(int argc, char **argv)
{
	static char buf[SIZE];
	uint32_t crc = 41;
	struct stat st;
	int fd;

	test_init(argc, argv);
	fd = open("unlinked.dat", O_RDWR | O_CREAT | O_TRUNC, 0640);
	if (fd < 0)
		return fail_errno("open"), 1;
	datagen(buf, SIZE, &crc);
	if (write(fd, buf, SIZE) != (ssize_t)SIZE || lseek(fd, POS, SEEK_SET) != POS)
		return fail_errno("write"), 1;
	if (unlink("unlinked.dat"))
		return fail_errno("unlink"), 1;
	test_daemon();
	test_waitsig();

	if (fstat(fd, &st))
		return fail_errno("fstat"), 1;
	if (st.st_nlink != 0)
		return fail("file has %ld links, want 0", (long)st.st_nlink), 1;
	if (st.st_size != (off_t)SIZE || (st.st_mode & 07777) != 0640)
		return fail("size %ld mode %o", (long)st.st_size, st.st_mode), 1;
	if (access("unlinked.dat", F_OK) == 0)
		return fail("the unlinked name came back"), 1;
	if (lseek(fd, 0, SEEK_CUR) != POS)
		return fail("position changed"), 1;
	if (pread(fd, buf, SIZE, 0) != (ssize_t)SIZE || datachk(buf, SIZE, &crc))
		return fail("contents differ"), 1;
	pass();
	return 0;
}
