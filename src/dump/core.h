/* SPDX-License-Identifier: MIT */
#ifndef AMBER_DUMP_CORE_H
#define AMBER_DUMP_CORE_H

#include "core.pb-c.h"

struct dump_ctx;
struct dump_task;

/* Writes core-<tid>.img for every thread of @t (one for a zombie). */
int dump_task_core(struct dump_ctx *dc, struct dump_task *t, TaskKobjIdsEntry *ids);

#endif
