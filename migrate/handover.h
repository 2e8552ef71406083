/* Live-migration handover protocol (docs/migrate.md): frame types and what
 * both sides share (handover.c). The source is migrate*.c (`ferry migrate`),
 * the destination dst*.c (requests of `ferry serve`, dst.h); neither links
 * the other's code.
 *
 * Session after HELLO (source S = client, destination D = `ferry serve`):
 *   S: MIGRATE_BEGIN          D: checks name/rootfs/address, starts
 *                                `criu page-server` on a socket pair
 *   D: MIG_ACCEPT
 *   S <-> D: STREAM_DATA / STREAM_CLOSE on stream 1 (page-server relay,
 *            both directions) while S's CRIU dumps the frozen tenant
 *   S: MIG_FILE..., MIG_FILES_END (manifest)   (S holds CRIU's post-dump)
 *   S: MIG_RESTORE            D: restores and HOLDS CRIU's post-restore
 *                                (tree restored, stopped, network locked)
 *   D: MIG_RESTORED           S: decides: commit marker written, answers
 *                                post-dump "ok" (CRIU kills the source tree)
 *   S: MIG_COMMIT             D: answers post-restore "ok": tenant resumes,
 *                                gratuitous ARP, registered running
 *   D: MIG_DONE               S: removes its record
 * Any failure before MIG_RESTORED reached S: S answers post-dump "fail"
 * (the tenant resumes on S) and D aborts its restore. D drops a held restore
 * when the session ends before it sent MIG_RESTORED; after that it waits
 * (in doubt) for S to reconnect with MIGRATE_RESOLVE.
 * Post-copy: no page stream before the files; a second session
 * (MIG_REQ_PAGES) relays CRIU's lazy page server on S to the lazy-pages
 * daemon on D. S cuts the tenant's network and answers post-dump "fail"
 * before MIG_RESTORE (CRIU serves pages, keeps the tasks); on MIG_RESTORED
 * it SIGKILLs the frozen tree, then sends MIG_COMMIT.
 * Pre-copy: after MIG_ACCEPT, per CRIU pre-dump round S sends MIG_ROUND, D
 * starts a page server into round-N/ (parent ../round-N-1) and answers
 * MIG_ACCEPT, the pages flow on stream 1 while the tenant runs; the final
 * MIG_ROUND (final) is the frozen dump into the migration's directory
 * (parent round-N), then files, RESTORE, ... as in stop-copy. */
#ifndef FERRY_HANDOVER_H
#define FERRY_HANDOVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "transport/chan.h"
#include "lib/err.h"
#include "transport/frame.h"
#include "proto/wire.pb-c.h"

enum mig_type {
	MIG_REQ_BEGIN = 33,   /* request: MigrateBegin */
	MIG_REQ_RESOLVE = 34, /* request: MigrateResolve (in-doubt decision) */
	MIG_REQ_PAGES = 35,   /* request: post-copy page relay of a migration (MigrateStep) */
	MIG_REQ_QUERY = 36,   /* request to the source's agent: outcome? (MigrateStep) */
	MIG_ACCEPT = 64,      /* D: ready, page server running (MigrateStep) */
	MIG_FILE = 65,	      /* S: MigrateFile */
	MIG_FILES_END = 66,   /* S: MigrateFilesEnd */
	MIG_RESTORE = 67,     /* S: restore now (S is frozen) */
	MIG_RESTORED = 68,    /* D: restored and held (not running, network locked) */
	MIG_COMMIT = 69,      /* S: the source copy is dead: resume yours */
	MIG_DONE = 70,	      /* D: running (MigrateStep with timings) */
	MIG_ABORT = 71,	      /* S: give up; discard everything */
	MIG_VERDICT = 72,     /* source's agent: MigrateVerdict (query.h) */
	MIG_ROUND = 80,	      /* S: pre-copy round (MigrateRound); D answers MIG_ACCEPT */
	MIG_FS_HAVE = 81,     /* D: after BEGIN with carry_fs: has the image? (MigrateStep) */
	MIG_FS_CHUNK = 82,    /* S: MigrateFsChunk (migrate_fs.h) */
	MIG_FS_END = 83,      /* S: MigrateFsEnd */
};

#define MIG_STREAM_PAGES 1

/* Seconds the destination keeps a restored, held tenant after the session
 * dropped between MIG_RESTORED and MIG_COMMIT, waiting for MIGRATE_RESOLVE
 * (env FERRY_MIGRATE_INDOUBT_S overrides). After that it discards it. */
#define MIG_INDOUBT_S 60

/* Send a MigrateStep (m may be NULL) as a frame of type t; errors stick. */
int mig_send_step(struct chan *c, uint8_t t, const Ferry__Wire__MigrateStep *m);
/* Receive the next frame, which must be of type want (ERROR -> the peer's
 * error, anything else -> protocol error). *step, if not NULL, gets the
 * decoded MigrateStep (free with wire_free). */
int mig_recv(struct chan *c, struct frame_buf *fb, uint8_t want, const char *waiting,
	     Ferry__Wire__MigrateStep **step, ferr_t *err);

/* Where this host's agent listens, STATE/agent.addr: a destination in doubt
 * asks it for the outcome (query.h). The agent records it at start and
 * forgets it at stop. */
int hq_record_agent(const char *state_dir, const char *host, uint16_t port, ferr_t *err);
void hq_forget_agent(const char *state_dir);
/* Source `ferry migrate`: MIGRATE_BEGIN's source agent fields, from explicit
 * ("HOST:PORT", may be NULL) or STATE/agent.addr. hostbuf keeps the string. */
void hq_fill_begin(Ferry__Wire__MigrateBegin *b, const char *state_dir, const char *explicit,
		   char *hostbuf, size_t len);

#endif
