/* SPDX-License-Identifier: MIT */
#ifndef AMBER_TRACK_INTERNAL_H
#define AMBER_TRACK_INTERNAL_H

#include <stdint.h>

#include "mem/track.h"

/* track_uffdwp.c */
int uffdwp_prepare(struct track_task *tt, int prev_fd);
int uffdwp_register(struct track_task *tt, uint64_t start, uint64_t end);

#endif
