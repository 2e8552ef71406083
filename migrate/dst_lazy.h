/* Destination, post-copy: lazy-pages daemons of migrations in progress
 * (dst_lazy.c). The agent owns one table (struct mig_state, dst.h) shared by
 * its connection threads; every function is thread-safe (one mutex inside
 * the table protects all of it). */
#ifndef FERRY_DST_LAZY_H
#define FERRY_DST_LAZY_H

#include <stdbool.h>
#include <sys/types.h>

#include "lib/err.h"
#include "transport/chan.h"
#include "transport/frame.h"

struct lazy_tab;

/* An empty table (any number of migrations); free: when no connection runs
 * (closes the sockets nobody took; daemons are left to themselves). */
struct lazy_tab *lazy_tab_new(ferr_t *err);
void lazy_tab_free(struct lazy_tab *t);

/* The migration's end of the daemon's page-server socket (owned from now)
 * and its image directory (removed once the daemon is done). -1 when out of
 * memory. */
int lazy_register(struct lazy_tab *t, const char *id, int sk, bool lz4, const char *dir);
void lazy_set_daemon(struct lazy_tab *t, const char *id, pid_t pid);
/* Forget the migration: close its socket if nobody took it (shut it down
 * when its pages connection relays it: that relay ends), reap the daemon
 * (SIGKILL first with kill_daemon). */
void lazy_drop(struct lazy_tab *t, const char *id, bool kill_daemon);

/* MIG_REQ_PAGES (req: MigrateStep with the migration id): take the
 * migration's socket (waiting a while for its MIGRATE_BEGIN to register it)
 * and relay the daemon's page requests to the source until it has every
 * page; then drop the migration. */
int lazy_serve_pages(struct chan *c, const struct frame_buf *req, struct lazy_tab *t, ferr_t *err);

#endif
