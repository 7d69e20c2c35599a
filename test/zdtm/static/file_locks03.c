// SPDX-License-Identifier: GPL-2.0
/*
 * Leases (--file-locks): a read lease on a file open read-only and a
 * write lease on another. After the restore F_GETLEASE gives each back
 * on its own fd, and another description of the first file has none.
 */
#include <fcntl.h>
#include <unistd.h>

#include "zdtm.h"

int main(int argc, char **argv)
{
	int rd, wr, other, l;

	test_init(argc, argv);
	close(open("lease_r", O_RDWR | O_CREAT, 0644));
	rd = open("lease_r", O_RDONLY);
	wr = open("lease_w", O_RDWR | O_CREAT, 0644);
	if (rd < 0 || wr < 0)
		return fail_errno("open"), 1;
	if (fcntl(rd, F_SETLEASE, F_RDLCK) || fcntl(wr, F_SETLEASE, F_WRLCK))
		return fail_errno("F_SETLEASE"), 1;
	test_daemon();
	test_waitsig();

	l = fcntl(rd, F_GETLEASE);
	if (l != F_RDLCK)
		return fail("read lease: F_GETLEASE gives %d", l), 1;
	l = fcntl(wr, F_GETLEASE);
	if (l != F_WRLCK)
		return fail("write lease: F_GETLEASE gives %d", l), 1;
	other = open("lease_r", O_RDONLY);
	l = other < 0 ? -1 : fcntl(other, F_GETLEASE);
	if (l != F_UNLCK)
		return fail("another description of lease_r has lease %d", l), 1;
	if (fcntl(rd, F_SETLEASE, F_UNLCK) || fcntl(wr, F_SETLEASE, F_UNLCK))
		return fail_errno("releasing the leases"), 1;
	pass();
	return 0;
}
