/* SPDX-License-Identifier: MIT */
#ifndef AMBER_RESTORER_LAZY_H
#define AMBER_RESTORER_LAZY_H

struct rst_task_args;

/* Registers the lazy VMAs and hands their uffd over; see lazy.c. */
long rst_lazy_register(struct rst_task_args *a, const char **what);

#endif
