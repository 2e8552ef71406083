/* Source side of a live migration: the state of one migration and what
 * every mode (migrate_mode.h: migrate_stopcopy.c, migrate_precopy.c,
 * migrate_postcopy.c) shares, in migrate_src.c. migrate.c sets it up and
 * runs the mode. Private to migrate/. */
#ifndef FERRY_MIGRATE_SRC_H
#define FERRY_MIGRATE_SRC_H

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "transport/chan.h"
#include "transport/chan_tls.h"
#include "migrate/migrate.h"
#include "tenant/registry.h"
#include "transport/relay.h"

struct mfs_src;

struct src {
	const struct migrate_opts *o;
	struct migrate_result *r;
	struct tenant_rec rec;
	struct tls_ctx *tls;
	struct chan *c;
	char img[PATH_MAX];	 /* local images (everything but pages) */
	char marker[PATH_MAX];	 /* the decision, written before CRIU is told */
	int sv[2];		 /* sv[0]: CRIU's page-server socket, sv[1]: the relay's */
	struct chan *relay_chan; /* the session the relay uses (post-copy: its own) */
	pthread_t relay_tid;
	bool relay_running;
	struct relay_opts ro;
	struct relay_stats rs;
	int relay_rc;
	ferr_t relay_err;
	uint64_t t0, t_lock, t_postdump, t_files, t_restored, t_commit, t_pages_done;
	bool restore_sent;   /* the destination may hold a restored copy */
	bool commit_decided; /* post-dump answered "ok": CRIU kills our copy */
	/* pre-copy's final save: the last round's images, change tracking */
	const char *parent_img;
	bool track_mem;
	bool live;	      /* pre-copy by the backend itself: a live final save */
	bool copy_volumes;    /* the backend copies the tenant's volumes (kind.h) */
	struct mfs_src *fs;   /* the tenant's files travel (migrate_fs.h) */
	struct pkthold *hold; /* copies of what reaches the frozen tenant */
};

void msrc_progress(struct src *s, const char *stage);
/* A new authenticated session to the destination (HELLO done). */
int msrc_connect(struct src *s, struct chan **out, ferr_t *err);
/* Relay CRIU's page-server socket (sv) over s->relay_chan in a thread. */
int msrc_start_relay(struct src *s, ferr_t *err);
int msrc_stop_relay(struct src *s, ferr_t *err);
/* Images, RESTORE, wait for RESTORED, write the decision: 0 = commit. */
int msrc_hold(struct src *s, ferr_t *err);
/* The two halves of msrc_hold (post-copy answers CRIU in between). */
int msrc_send_restore(struct src *s, ferr_t *err);
int msrc_wait_restored(struct src *s, ferr_t *err);
/* COMMIT, DONE (or resolve on a new connection). */
int msrc_commit(struct src *s, ferr_t *err);
void msrc_cleanup(struct src *s);
/* Hold copies of the TCP segments that reach the tenant from now on (it is
 * about to freeze; tenant/pkthold.h), and once it runs on the destination
 * (after msrc_commit), replay them there. Best effort, logged. */
void msrc_hold_packets(struct src *s);
void msrc_replay_packets(struct src *s);
void msrc_abort(struct src *s);

#endif
