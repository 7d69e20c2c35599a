// SPDX-License-Identifier: GPL-2.0
/*
 * A file held by an fd and a shared mapping whose name was unlinked after
 * it was linked under another name in the same directory (what glibc's
 * sem_open() does in /dev/shm): both still reach that inode, by its
 * other name, and the unlinked name stays gone.
 */
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "zdtm.h"

#define SIZE 8192

int main(int argc, char **argv)
{
	static char buf[SIZE];
	uint32_t crc = 7;
	struct stat st, named;
	char *map;
	int fd;

	test_init(argc, argv);
	fd = open("tmp.XXXX", O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		return fail_errno("open"), 1;
	datagen(buf, SIZE, &crc);
	if (write(fd, buf, SIZE) != SIZE)
		return fail_errno("write"), 1;
	map = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED)
		return fail_errno("mmap"), 1;
	if (link("tmp.XXXX", "sem.named") || unlink("tmp.XXXX"))
		return fail_errno("link"), 1;
	test_daemon();
	test_waitsig();

	if (fstat(fd, &st) || stat("sem.named", &named))
		return fail_errno("stat"), 1;
	if (st.st_ino != named.st_ino || st.st_dev != named.st_dev || st.st_nlink != 1)
		return fail("the fd's inode %lu (%lu links) is not sem.named's %lu",
			    (unsigned long)st.st_ino, (unsigned long)st.st_nlink,
			    (unsigned long)named.st_ino), 1;
	if (access("tmp.XXXX", F_OK) == 0)
		return fail("the unlinked name came back"), 1;
	if (datachk(map, SIZE, &crc))
		return fail("the mapping's contents differ"), 1;
	/* the mapping and the fd are the same file still */
	if (pwrite(fd, "shared", 6, 100) != 6 || memcmp(map + 100, "shared", 6))
		return fail("a write through the fd is not seen in the mapping"), 1;
	pass();
	return 0;
}
