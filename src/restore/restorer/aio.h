/* SPDX-License-Identifier: MIT */
#ifndef AMBER_RESTORER_AIO_H
#define AMBER_RESTORER_AIO_H

#include "restore/restorer_args.h"

/*
 * AIO rings in the restorer. The saved ring VMA has been mapped as
 * private anonymous memory at its address and filled from the pages
 * image; here each ring is created again with io_setup() of the saved
 * nr_req (the same ring size), brought to the saved head and tail, given
 * the saved events and moved over the saved copy with mremap(), which
 * makes its address, the context id, the saved one. The kernel keeps its
 * own tail (where the next completion goes), so the tail is reached by
 * completing requests that do nothing: reads of an empty memfd, which
 * complete at once. 0, or a negative errno, *what and *at.
 */
long rst_restore_aio_rings(struct rst_task_args *a, const char **what, uint64_t *at);

#endif
