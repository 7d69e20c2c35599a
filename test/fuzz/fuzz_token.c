// SPDX-License-Identifier: MIT
/*
 * The page server's token handshake alone (pageserver/auth.c), both ends:
 *   mode 0: the server's side; the input is the client's reply
 *   mode 1: the server's side; the reply is the correct one XORed with
 *           the input (so near misses and the success path are reached)
 *   mode 2: the client's side; the input is the server's challenge and
 *           status
 *   mode 3: the token file's parser (ps_read_token) on the input
 * Input: u8 mode | bytes.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common.h"
#include "pageserver/conn.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fz_init();
	return 0;
}

/* Mode 1: the right answer to the challenge, XORed with the input. */
static void answer_xor(struct fz_peer *p)
{
	uint8_t reply[8 + 32];

	if (fz_token_reply(p->fd, reply))
		return;
	for (size_t i = 0; i < sizeof(reply) && i < p->size; i++)
		reply[i] ^= p->data[i];
	p->size = 0;
	if (send(p->fd, reply, sizeof(reply), MSG_NOSIGNAL) < 0)
		return;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_peer peer = { .data = data + 1, .size = size ? size - 1 : 0 };
	struct ps_conn c = { .wire = PS_WIRE_24, .peer = "fuzz" };
	struct ps_sec sec = {};
	const uint8_t *tok;
	size_t tlen;

	fz_fds_begin();

	if (!size)
		return 0;
	sec.token_file = fz_token_file(&tok, &tlen);
	switch (data[0] & 3) {
	case 3: {
		char path[160];
		uint8_t buf[PS_TOKEN_MAX];
		size_t len;
		int fd;

		snprintf(path, sizeof(path), "%s.tok", fz_dir_path());
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd < 0 || write(fd, data + 1, size - 1) != (ssize_t)(size - 1))
			abort();
		close(fd);
		ps_read_token(path, buf, &len);
		return 0;
	}
	case 1:
		peer.before = answer_xor;
		break;
	}
	fz_peer_start(&peer, &c.fd);
	if ((data[0] & 3) == 2)
		ps_conn_client_secure(&c, &sec, "fuzz");
	else
		ps_conn_server_secure(&c, &sec);
	ps_conn_close(&c);
	fz_peer_join(&peer);
	fz_fds_end();
	return 0;
}
