// SPDX-License-Identifier: GPL-2.0
/*
 * Leases being broken (--file-locks): a read lease whose break to none
 * was started by a write open, and a write lease whose break down to a
 * read lease was started by a read open (both non-blocking opens that
 * failed with EWOULDBLOCK). After the restore each is still being
 * broken, to the same type; the holder then finishes both breaks.
 * (The kernel ends a break itself after fs.lease-break-time, 45 s.)
 * F_SETLEASE made the task the files' owner, so each break signals it
 * SIGIO; the restore's breaks signal it again (as CRIU's).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "zdtm.h"

/* @fd's lease line in its fdinfo ("LEASE  BREAKING  UNLCK ..."), or "". */
static const char *lease_of(int fd, char *buf, size_t size)
{
	char path[64], line[256];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	buf[0] = 0;
	f = fopen(path, "r");
	if (!f)
		return buf;
	while (fgets(line, sizeof(line), f))
		if (strstr(line, "LEASE")) {
			snprintf(buf, size, "%s", strstr(line, "LEASE"));
			break;
		}
	fclose(f);
	return buf;
}

static int has(int fd, const char *what, const char *type)
{
	char buf[256];

	lease_of(fd, buf, sizeof(buf));
	if (!strstr(buf, what) || !strstr(buf, type)) {
		test_msg("fd %d: lease \"%s\", want %s %s\n", fd, buf, what, type);
		return 0;
	}
	return 1;
}

static volatile sig_atomic_t sigios;

static void on_sigio(int sig)
{
	(void)sig;
	sigios++;
}

int main(int argc, char **argv)
{
	int to_none, to_read, fd;

	test_init(argc, argv);
	signal(SIGIO, on_sigio);
	close(open("lease_none", O_RDWR | O_CREAT, 0644));
	close(open("lease_read", O_RDWR | O_CREAT, 0644));
	/* read-only: a read lease can't be taken on a file open for writing,
	 * so the downgrade at the end needs it */
	to_none = open("lease_none", O_RDONLY);
	to_read = open("lease_read", O_RDONLY);
	if (to_none < 0 || to_read < 0)
		return fail_errno("open"), 1;
	if (fcntl(to_none, F_SETLEASE, F_RDLCK) || fcntl(to_read, F_SETLEASE, F_WRLCK))
		return fail_errno("F_SETLEASE"), 1;
	fd = open("lease_none", O_WRONLY | O_NONBLOCK);
	if (fd >= 0 || errno != EWOULDBLOCK)
		return fail_errno("breaking the read lease"), 1;
	fd = open("lease_read", O_RDONLY | O_NONBLOCK);
	if (fd >= 0 || errno != EWOULDBLOCK)
		return fail_errno("breaking the write lease"), 1;
	if (!has(to_none, "BREAKING", "UNLCK") || !has(to_read, "BREAKING", "READ"))
		return fail("the breaks did not start"), 1;
	if (sigios != 2)
		return fail("%d SIGIOs for two breaks", (int)sigios), 1;
	test_daemon();
	test_waitsig();

	if (!has(to_none, "BREAKING", "UNLCK") || !has(to_read, "BREAKING", "READ"))
		return fail("the leases are not being broken after the restore"), 1;
	if (fcntl(to_read, F_GETLEASE) != F_RDLCK || fcntl(to_none, F_GETLEASE) != F_UNLCK)
		return fail("F_GETLEASE gives the wrong targets"), 1;
	/* the holder gives in: down to read, and none */
	if (fcntl(to_read, F_SETLEASE, F_RDLCK) || fcntl(to_none, F_SETLEASE, F_UNLCK))
		return fail_errno("finishing the breaks"), 1;
	if (!has(to_read, "ACTIVE", "READ"))
		return fail("the downgraded lease is not an active read lease"), 1;
	fd = open("lease_none", O_WRONLY | O_NONBLOCK);
	if (fd < 0)
		return fail_errno("a write open after the lease went"), 1;
	pass();
	return 0;
}
