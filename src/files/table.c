// SPDX-License-Identifier: MIT
/*
 * The file types amber dumps and restores, one line each. The order is
 * the order match() is tried in at dump (first match wins: a memfd is a
 * regular file too, so it comes before reg) and the order of the load()
 * and prepare() hooks at restore.
 */
#include <stddef.h>

#include "base/util.h"
#include "files/files_internal.h"

const struct files_type *const files_types[] = {
	&files_pidfd_type,
	&files_memfd_type,
	&files_unix_type,
	&files_inet_type,
	&files_netlink_type,
	&files_packet_type,
	&files_pipe_type,
	&files_fifo_type,
	&files_tty_type,
	&files_mqueue_type, /* a regular file at "/NAME" to the others */
	&files_reg_type,
	&files_eventfd_type,
	&files_signalfd_type,
	&files_timerfd_type,
	&files_epoll_type,
	&files_inotify_type,
	&files_fanotify_type,
};

const int files_nr_types = ARRAY_SIZE(files_types);

const struct files_type *files_type_of(FdTypes type)
{
	for (int i = 0; i < files_nr_types; i++)
		if (files_types[i]->type == type)
			return files_types[i];
	return NULL;
}
