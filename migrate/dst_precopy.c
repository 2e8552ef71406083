/* Pre-copy, destination side (dst_precopy.h). */
#define LOG_PREFIX "handover"
#include "migrate/dst_precopy.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/close_range.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "transport/frame.h"
#include "migrate/handover.h"
#include "lib/log.h"
#include "migrate/precopy.h"
#include "migrate/reconcile.h"
#include "transport/relay.h"
#include "transport/session.h"
#include "lib/util.h"
#include "transport/wire.h"

/* Round n (final: the frozen dump): its directory, page server, relay. */
static int one_round(struct chan *c, const struct precopy_dst_opts *o, unsigned n, bool final,
		     ferr_t *err)
{
	struct relay_opts ro = {.stream = MIG_STREAM_PAGES,
				.lz4 = o->lz4,
				.idle_ms = o->timeout_ms > 0 ? o->timeout_ms : 30000,
				.on_rx = o->on_rx,
				.on_rx_arg = o->on_rx_arg};
	struct relay_stats rs;
	struct ckpt_sink *sink;
	char name[32], dir[PATH_MAX], parent[48];
	int r, fd;

	/* both names come from our own counter, never from the peer */
	if (precopy_parent(final ? "" : "..", n - 1, parent, sizeof(parent)) < 0 ||
	    precopy_round_name(n, name, sizeof(name)) < 0)
		return ferr_set(err, FX_FAIL, "round %u: name too long", n);
	if (final) {
		snprintf(dir, sizeof(dir), "%s", o->dir);
	} else {
		if (xsnprintf_path(dir, sizeof(dir), o->dir, name) < 0)
			return ferr_set(err, FX_FAIL, "path of round %u too long", n);
		if (mkdir(dir, 0700) < 0)
			return ferr_sys(err, FX_CONFLICT, "creating %s", dir);
	}
	if (o->ckpt->sink_open(o->env, dir, parent, NULL, &sink, &fd, err) < 0)
		return -1;
	if (mig_send_step(c, MIG_ACCEPT, NULL) < 0) {
		o->ckpt->sink_close(sink, true, NULL);
		return chan_take_error(c, err);
	}
	if (n == 2 && !final) /* testing hook: round 1 is in, round 2 starts */
		mig_fault_point("crash-during-round");
	r = relay_run(c, fd, &ro, &rs, err);
	if (o->ckpt->sink_close(sink, r < 0, r < 0 ? NULL : err) < 0)
		return -1;
	if (r < 0)
		return -1;
	pr_info("migration %s: %s %u: %llu page bytes in %.2f s", o->migration_id,
		final ? "final dump after round" : "pre-copy round", final ? n - 1 : n,
		(unsigned long long)rs.raw_rx, rs.seconds);
	return 0;
}

/* The next MIG_ROUND: its number and whether it is the final dump. */
static int next_round(struct chan *c, unsigned done, unsigned *n, bool *final, ferr_t *err)
{
	struct frame_buf fb = {0};
	Ferry__Wire__MigrateRound *m = NULL;
	int r = -1;

	if (frame_recv(c, &fb, err) < 0) {
		ferr_wrap(err, "waiting for pre-copy round %u", done + 1);
		goto out;
	}
	if (fb.h.type == MIG_ABORT) {
		ferr_set(err, FX_PEER, "the source aborted the migration");
		goto out;
	}
	if (fb.h.type == WIRE_ERROR) {
		session_peer_error(&fb, chan_peer(c), err);
		goto out;
	}
	if (fb.h.type != MIG_ROUND) {
		session_unexpected(&fb, chan_peer(c), "ROUND", err);
		goto out;
	}
	m = wire_unpack(&ferry__wire__migrate_round__descriptor, fb.data, fb.h.len, err);
	if (!m)
		goto out;
	*n = m->round;
	*final = m->has_final && m->final;
	if (!precopy_round_ok(done, *n, *final)) {
		ferr_set(err, FX_INTEGRITY, "pre-copy %s %u out of order (after %u rounds)",
			 *final ? "final dump" : "round", *n, done);
		goto out;
	}
	r = 0;
out:
	wire_free(m);
	frame_buf_free(&fb);
	return r;
}

int precopy_receive(struct chan *c, const struct precopy_dst_opts *o, ferr_t *err)
{
	unsigned done = 0, n;
	bool final = false;

	if (mig_send_step(c, MIG_ACCEPT, NULL) < 0)
		return chan_take_error(c, err);
	while (!final) {
		if (next_round(c, done, &n, &final, err) < 0)
			return -1;
		if (one_round(c, o, n, final, err) < 0)
			return ferr_wrap(err, "pre-copy %s %u", final ? "final dump" : "round", n);
		done = n;
	}
	return 0;
}
