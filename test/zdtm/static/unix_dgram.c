// SPDX-License-Identifier: GPL-2.0
/* A unix datagram socketpair: queued messages keep their boundaries. */
#include <sys/socket.h>
#include <unistd.h>

#include "zdtm.h"

#define NR_MSGS 20
#define MAX_MSG 2048

static size_t msg_len(int i)
{
	return 8 + i * 97 % (MAX_MSG - 8);
}

int main(int argc, char **argv)
{
	static char msg[MAX_MSG], buf[MAX_MSG + 1];
	uint32_t crc[NR_MSGS];
	ssize_t n;
	int sk[2], i;

	test_init(argc, argv);
	if (socketpair(AF_UNIX, SOCK_DGRAM, 0, sk))
		return fail_errno("socketpair"), 1;
	for (i = 0; i < NR_MSGS; i++) {
		crc[i] = 100 + i;
		datagen(msg, msg_len(i), &crc[i]);
		if (send(sk[0], msg, msg_len(i), 0) != (ssize_t)msg_len(i))
			return fail_errno("send %d", i), 1;
	}
	test_daemon();
	test_waitsig();

	for (i = 0; i < NR_MSGS; i++) {
		n = recv(sk[1], buf, sizeof(buf), MSG_DONTWAIT);
		if (n != (ssize_t)msg_len(i))
			return fail("message %d: %zd bytes, want %zu", i, n,
				    msg_len(i)), 1;
		if (datachk(buf, n, &crc[i]))
			return fail("message %d corrupted", i), 1;
	}
	if (recv(sk[1], buf, sizeof(buf), MSG_DONTWAIT) != -1)
		return fail("an extra message appeared"), 1;
	pass();
	return 0;
}
