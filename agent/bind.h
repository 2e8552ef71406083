/* Migration-scoped requests are bound to the peer that began the migration:
 * the agent records the certificate name of each MIGRATE_BEGIN under its
 * migration id, and accepts MIGRATE_RESOLVE and MIG_REQ_PAGES for that id
 * only from the same name (docs/security.md). An id never seen by this agent
 * process (e.g. before a restart: then nothing of it is held in memory any
 * more, and the handler answers from what it knows) passes to the handler.
 * Thread-safe: one mutex inside. */
#ifndef FERRY_AGENT_BIND_H
#define FERRY_AGENT_BIND_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/err.h"
#include "transport/frame.h"

struct bind_tab;

/* A table of at most cap migrations; finished ones are forgotten after
 * keep_s seconds when room is needed. */
struct bind_tab *bind_tab_new(unsigned cap, unsigned keep_s, ferr_t *err);
void bind_tab_free(struct bind_tab *t);

/* Before a request of type req->h.type from peer_name runs: BEGIN binds its
 * migration id to peer_name (FX_CONFLICT when another peer holds it, or when
 * the table is full of migrations in progress); RESOLVE and PAGES must come
 * from the name the id is bound to (FX_CONFLICT otherwise). *bound gets
 * whether a BEGIN was recorded (then call bind_end when it is over). Other
 * requests pass. */
int bind_check(struct bind_tab *t, const struct frame_buf *req, const char *peer_name, char *id,
	       size_t id_size, bool *bound, ferr_t *err);
/* The BEGIN connection of id ended. */
void bind_end(struct bind_tab *t, const char *id);

#endif
