/* SPDX-License-Identifier: MIT */
#ifndef AMBER_TRACK_INTERNAL_H
#define AMBER_TRACK_INTERNAL_H

/*
 * Between the tracker interface (track.c) and its backends: only track.c
 * includes this; everyone else goes through mem/track.h.
 */
#include <stdint.h>
#include <sys/types.h>

#include "mem/track.h"

/* track_uffdwp.c */
int uffdwp_prepare(struct track_task *tt, int prev_fd);
int uffdwp_register(struct track_task *tt, uint64_t start, uint64_t end);
/* Closes every uffd-wp tracker fd of frozen task @pid; how many, or -errno. */
int uffdwp_remove(pid_t pid);

#endif
