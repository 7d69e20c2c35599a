/* SPDX-License-Identifier: MIT */
#ifndef AMBER_FDPASS_H
#define AMBER_FDPASS_H

/*
 * One fd over a unix socket (SCM_RIGHTS): the RPC reply that hands
 * runc a container's terminal, a lazy-pages message with its memfd or
 * uffd, an orphan pty master sent back from the tree's devpts.
 */
#include <stddef.h>
#include <sys/types.h>

/*
 * @len bytes of @buf in one sendmsg() (MSG_NOSIGNAL), with @fd attached
 * when it is >= 0. Returns the bytes sent or -errno.
 */
ssize_t fdpass_send(int sk, const void *buf, size_t len, int fd);

/*
 * The fd of one single-byte message queued on @sk (fdpass_send() of one
 * byte), close-on-exec; no waiting. The fd or -errno (-EBADMSG: no fd).
 */
int fdpass_recv_queued(int sk);

#endif
