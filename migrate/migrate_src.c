/* Source side of a live migration: what every mode shares (migrate_src.h):
 * the session, the page relay, the images, RESTORE / RESTORED, the decision
 * and its delivery, cleanup and abort. */
#define LOG_PREFIX "migrate"
#include "migrate/migrate_src.h"
#include "migrate/migrate_fs.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/fsutil.h"
#include "lib/log.h"
#include "lib/util.h"
#include "migrate/handover.h"
#include "migrate/migrate_files.h"
#include "migrate/reconcile.h"
#include "proto/manifest.h"
#include "snapshot/dump.h"
#include "tenant/kind.h"
#include "tenant/pkthold.h"
#include "tenant/registry.h"
#include "transport/chan_sock.h"
#include "transport/chan_tls.h"
#include "migrate/query.h"
#include "transport/relay.h"
#include "transport/session.h"
#include "transport/wire.h"

void msrc_progress(struct src *s, const char *stage)
{
	if (s->o->progress)
		s->o->progress(stage, s->r, s->o->progress_arg);
}

int msrc_connect(struct src *s, struct chan **out, ferr_t *err)
{
	struct session_info si;
	struct chan *raw = chan_tcp_connect(s->o->host, s->o->port, 10000, err);

	*out = NULL;
	if (!raw)
		return -1;
	*out = chan_tls_client(raw, s->tls, s->o->peer ? s->o->peer : s->o->host, s->o->timeout_ms,
			       err);
	if (!*out)
		return -1;
	/* only this certificate may ask our agent about the migration (query.h) */
	if (query_bind_peer(s->o->state_dir, s->r->migration_id, chan_tls_peer_cn(*out), err) < 0 ||
	    session_hello_client(*out, s->o->name, &si, err) < 0) {
		chan_close(*out);
		*out = NULL;
		return -1;
	}
	return 0;
}

/* ---- the relay thread: CRIU's page server socket <-> the session ---- */

static void *relay_main(void *arg)
{
	struct src *s = arg;

	s->relay_rc = relay_run(s->relay_chan, s->sv[1], &s->ro, &s->rs, &s->relay_err);
	/* CRIU must not wait for an answer that will never come */
	shutdown(s->sv[1], SHUT_RDWR);
	return NULL;
}

int msrc_start_relay(struct src *s, ferr_t *err)
{
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s->sv) < 0)
		return ferr_sys(err, FX_FAIL, "socketpair for the page server");
	s->ro.stream = MIG_STREAM_PAGES;
	s->ro.lz4 = s->o->compress;
	s->ro.idle_ms = s->o->timeout_ms;
	if (!s->relay_chan)
		s->relay_chan = s->c;
	if (pthread_create(&s->relay_tid, NULL, relay_main, s) != 0)
		return ferr_set(err, FX_FAIL, "cannot start the relay thread");
	s->relay_running = true;
	return 0;
}

/* CRIU is done with the page server (post-dump, or the dump ended): end our
 * side of the relay and collect its result. */
int msrc_stop_relay(struct src *s, ferr_t *err)
{
	if (!s->relay_running)
		return 0;
	shutdown(s->sv[0], SHUT_RDWR);
	pthread_join(s->relay_tid, NULL);
	s->relay_running = false;
	s->r->pages_raw = s->rs.raw_tx;
	s->r->pages_payload = s->rs.payload_tx;
	if (s->relay_rc < 0) {
		*err = s->relay_err;
		return ferr_wrap(err, "streaming pages to %s", s->r->dest);
	}
	return 0;
}

/* ---- the handover, inside CRIU's post-dump notification ---- */

static int send_images(struct src *s, ferr_t *err)
{
	const struct tenant_rec *rec = &s->rec;
	const struct tenant_kind_ops *kind = kind_get(rec->kind, rec->name, err);
	manifest_t *m = kind ? dump_manifest_new(rec, true) : NULL;
	int ret = -1;

	if (!kind)
		return -1;
	if (!m)
		return ferr_set(err, FX_FAIL, "out of memory");
	/* still frozen: a failed fix-up fails the migration, the tenant resumes */
	if (kind->ckpt->fixup(s->img, err) == 0 && manifest_add_dir(m, s->img, NULL, err) == 0 &&
	    mig_files_send(s->c, s->img, m, &s->r->files_raw, err) == 0)
		ret = 0;
	manifest_free(m);
	return ret;
}

int msrc_send_restore(struct src *s, ferr_t *err)
{
	if (mfs_src_final(s, err) < 0)
		return ferr_wrap(err, "to %s", s->r->dest);
	msrc_progress(s, "images");
	if (send_images(s, err) < 0)
		return ferr_wrap(err, "sending images to %s", s->r->dest);
	s->t_files = now_ns();
	msrc_progress(s, "restore");
	s->restore_sent = true;
	if (mig_send_step(s->c, MIG_RESTORE, NULL) < 0)
		return chan_take_error(s->c, err);
	mig_fault_point("src-crash-after-restore-sent"); /* testing hook (reconcile.h) */
	return 0;
}

int msrc_hold(struct src *s, ferr_t *err)
{
	if (msrc_send_restore(s, err) < 0)
		return -1;
	return msrc_wait_restored(s, err);
}

int msrc_wait_restored(struct src *s, ferr_t *err)
{
	Ferry__Wire__MigrateStep *st = NULL;
	struct frame_buf fb = {0};
	char line[512];

	if (mig_recv(s->c, &fb, MIG_RESTORED, "RESTORED", &st, err) < 0) {
		frame_buf_free(&fb);
		return ferr_wrap(err, "restore on %s", s->r->dest);
	}
	s->t_restored = now_ns();
	s->r->restore_ms = st->has_restore_ms ? st->restore_ms : ms_since(s->t_files);
	wire_free(st);
	frame_buf_free(&fb);
	/* The decision. Written down first: whoever finds this file after a
	 * crash knows the source copy was given up. */
	snprintf(line, sizeof(line), "migration %s: tenant %s committed to %s at %lld\n",
		 s->r->migration_id, s->rec.name, s->r->dest, (long long)wall_time());
	if (fs_write_atomic(s->marker, line, strlen(line), 0600, err) < 0)
		return ferr_wrap(err, "recording the handover decision");
	s->commit_decided = true;
	mig_fault_point("src-crash-after-marker"); /* testing hook (reconcile.h) */
	return 0;
}

/* ---- delivering the decision ---- */

/* DONE (or MIGRATE_RESOLVE's DONE): the destination re-mapped the tenant's
 * ID range (optional fields: an older destination says nothing). */
static void take_remap(struct src *s, const Ferry__Wire__MigrateStep *st)
{
	if (!st->has_id_remap_to || !st->id_remap_to || !st->has_id_remap_from ||
	    !st->has_id_remap_count || !st->id_remap_count)
		return;
	s->r->id_remap.from = st->id_remap_from;
	s->r->id_remap.to = st->id_remap_to;
	s->r->id_remap.count = st->id_remap_count;
}

static int resolve(struct src *s, bool commit, int budget_s, ferr_t *err)
{
	Ferry__Wire__MigrateResolve rq = FERRY__WIRE__MIGRATE_RESOLVE__INIT;
	uint64_t t0 = now_ns();

	rq.migration_id = s->r->migration_id;
	rq.commit = commit;
	for (;;) {
		struct chan *c = NULL;
		struct frame_buf fb = {0};
		Ferry__Wire__MigrateStep *st = NULL;
		int r = -1;
		if (msrc_connect(s, &c, err) == 0) {
			frame_send_pb(c, MIG_REQ_RESOLVE, &rq.base);
			chan_flush(c);
			r = mig_recv(c, &fb, MIG_DONE, "DONE", &st, err);
		}
		if (r == 0 && commit)
			take_remap(s, st);
		wire_free(st);
		frame_buf_free(&fb);
		chan_close(c);
		if (r == 0)
			return 0;
		if (err->code == FX_CONFLICT || err->code == FX_NOTFOUND)
			return -1; /* a definite answer */
		if (ms_since(t0) > budget_s * 1000.0)
			return ferr_wrap(err, "no answer from %s for %d s", s->r->dest, budget_s);
		sleep(1);
	}
}

int msrc_commit(struct src *s, ferr_t *err)
{
	Ferry__Wire__MigrateStep *st = NULL;
	struct frame_buf fb = {0};
	int r;

	mig_fault_point("src-crash-before-commit"); /* testing hook (reconcile.h) */
	s->t_commit = now_ns();
	msrc_progress(s, "commit");
	if (mig_send_step(s->c, MIG_COMMIT, NULL) == 0 &&
	    mig_recv(s->c, &fb, MIG_DONE, "DONE", &st, err) == 0) {
		s->r->resume_ms = st->has_resume_ms ? st->resume_ms : 0;
		s->r->net_ms = st->has_net_ms ? st->net_ms : 0;
		s->r->dest_pid = st->has_pid ? (pid_t)st->pid : 0;
		take_remap(s, st);
		wire_free(st);
		frame_buf_free(&fb);
		return 0;
	}
	frame_buf_free(&fb);
	pr_warn("migration %s: lost the session after COMMIT (%s): delivering the decision "
		"again",
		s->r->migration_id, err->msg);
	ferr_clear(err);
	r = resolve(s, true, s->o->retry_for_s, err);
	if (r < 0)
		return ferr_wrap(
		    err,
		    "tenant %s was handed over (the source copy is gone) but %s did "
		    "not confirm it runs: check `ferry ps` there (decision record: %s)",
		    s->rec.name, s->r->dest, s->marker);
	return 0;
}

void msrc_cleanup(struct src *s)
{
	uint64_t t = now_ns();

	registry_remove(s->o->state_dir, s->rec.name, NULL);
	fs_rm_rf(s->img, NULL);
	unlink(s->marker);
	s->r->cleanup_ms = ms_since(t);
}

void msrc_hold_packets(struct src *s)
{
	ferr_t e = {0};

	s->r->replayed = -1;
	if (s->hold || !s->rec.net.addr[0] || !pkthold_enabled())
		return;
	if (!(s->hold = pkthold_start(s->rec.net.addr, &e)))
		pr_warn("tenant %s: %s (its clients retransmit by themselves after the move)",
			s->rec.name, e.msg);
}

/* The destination's address as this session reaches it. */
static int dest_addr(const struct src *s, struct in_addr *a)
{
	struct sockaddr_in sin;
	socklen_t l = sizeof(sin);

	if (s->c && s->c->fd >= 0 && getpeername(s->c->fd, (struct sockaddr *)&sin, &l) == 0 &&
	    sin.sin_family == AF_INET) {
		*a = sin.sin_addr;
		return 0;
	}
	return inet_pton(AF_INET, s->o->host, a) == 1 ? 0 : -1;
}

void msrc_replay_packets(struct src *s)
{
	struct pkthold_stats st;
	struct in_addr via;
	ferr_t e = {0};

	if (!s->hold)
		return;
	if (dest_addr(s, &via) < 0)
		ferr_set(&e, FX_FAIL, "no IPv4 address for %s", s->r->dest);
	else if (pkthold_replay(s->hold, &via, &st, &e) == 0) {
		s->r->replayed = (int)st.sent;
		s->r->replay_lost = st.dropped + st.unsent;
		s->r->held = st.held;
	}
	if (e.code)
		pr_warn("tenant %s: held segments not replayed: %s", s->rec.name, e.msg);
	else
		pr_info("tenant %s: %u TCP segments held during the freeze (%u of them again), "
			"%u replayed to %s, %u lost by the hold, %u not taken by the interface",
			s->rec.name, st.held, st.again, st.sent, s->r->dest, st.dropped, st.unsent);
	pkthold_free(s->hold);
	s->hold = NULL;
}

void msrc_abort(struct src *s)
{
	ferr_t e = {0};

	if (s->c && !chan_error(s->c)) {
		mig_send_step(s->c, MIG_ABORT, NULL);
		return;
	}
	/* the session broke while the destination may hold a restored copy:
	 * tell it to drop it now rather than when its wait runs out */
	if (s->restore_sent && resolve(s, false, 5, &e) < 0)
		pr_info("migration %s: abort not delivered (%s); the destination drops its "
			"copy by itself",
			s->r->migration_id, e.msg);
}
