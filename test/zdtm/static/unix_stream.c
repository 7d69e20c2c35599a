// SPDX-License-Identifier: GPL-2.0
/* A unix stream socketpair with data queued in both directions. */
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "zdtm.h"

#define SIZE (40UL << 10)

static int drain(int fd, char *buf, size_t len, const uint32_t *crc)
{
	ssize_t n, got = 0;

	fcntl(fd, F_SETFL, O_NONBLOCK);
	while ((n = read(fd, buf + got, len + 1 - got)) > 0)
		got += n;
	return got == (ssize_t)len && !datachk(buf, len, crc) ? 0 : -1;
}

int main(int argc, char **argv)
{
	static char a2b[SIZE], b2a[SIZE], buf[SIZE + 1];
	uint32_t crc_ab = 51, crc_ba = 52;
	int sk[2], type;
	socklen_t len = sizeof(type);

	test_init(argc, argv);
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sk))
		return fail_errno("socketpair"), 1;
	datagen(a2b, SIZE, &crc_ab);
	datagen(b2a, SIZE, &crc_ba);
	if (write(sk[0], a2b, SIZE) != (ssize_t)SIZE ||
	    write(sk[1], b2a, SIZE) != (ssize_t)SIZE)
		return fail_errno("write"), 1;
	test_daemon();
	test_waitsig();

	if (getsockopt(sk[0], SOL_SOCKET, SO_TYPE, &type, &len) ||
	    type != SOCK_STREAM)
		return fail("not a stream socket any more"), 1;
	if (drain(sk[1], buf, SIZE, &crc_ab))
		return fail("queue 0->1 lost or corrupted"), 1;
	if (drain(sk[0], buf, SIZE, &crc_ba))
		return fail("queue 1->0 lost or corrupted"), 1;
	if (write(sk[0], "z", 1) != 1 || read(sk[1], buf, 2) != 1 || buf[0] != 'z')
		return fail("the sockets are no longer connected"), 1;
	pass();
	return 0;
}
