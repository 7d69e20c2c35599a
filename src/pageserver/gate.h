/* SPDX-License-Identifier: MIT */
#ifndef AMBER_PS_GATE_H
#define AMBER_PS_GATE_H

/*
 * The page server's door: how many connections it holds at once.
 *
 *   listening socket --accept (a thread of its own, at once)--> gate
 *     open < max:  queued, waiting its turn (an fd each, no buffer)
 *     open == max: closed at once with a reset and logged
 *   the server takes the oldest queued one and serves it; the others
 *   wait, so the one being served never sees them
 *
 * Without it, connections past the one served sat in the kernel's listen
 * backlog, unanswered, and a flood kept honest clients out silently. The
 * served connection counts: max 1 refuses every other while one is served.
 * Memory per connection is bounded elsewhere (conn.c: the message size
 * and deadline checks, before a buffer is sized from a header).
 */
#include "pageserver/conn.h"

#define PS_DEFAULT_MAX_CONNECTIONS 8
#define PS_MAX_CONNECTIONS_LIMIT 1024

struct ps_gate;

/* Starts accepting on @lfd, holding at most @max connections. */
int ps_gate_open(int lfd, int max, struct ps_gate **g);
/* The next queued connection into @c; waits for one. -errno if accept broke. */
int ps_gate_take(struct ps_gate *g, struct ps_conn *c);
/* The connection taken last is closed: its place is free. */
void ps_gate_done(struct ps_gate *g);
/* Stops accepting, closes the queued connections. */
void ps_gate_close(struct ps_gate *g);

#endif
