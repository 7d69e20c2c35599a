/* SPDX-License-Identifier: MIT */
#ifndef AMBER_RESTORER_FILE_LOCKS_H
#define AMBER_RESTORER_FILE_LOCKS_H

#include "restore/restorer_args.h"

/*
 * File locks (--file-locks) in the restorer, taken without waiting: a
 * restored lock that conflicts with one held now (by a task outside the
 * tree) fails the restore instead of hanging it. Run once the service
 * fds are closed, with the fd table in place. 0, or a negative errno
 * and *what.
 */
long rst_take_file_locks(struct rst_task_args *a, const char **what);

#endif
