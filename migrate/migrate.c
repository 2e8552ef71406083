/* Live migration, source side (migrate.h). */
#define LOG_PREFIX "migrate"
#include "migrate/migrate.h"

#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "transport/chan_sock.h"
#include "transport/chan_tls.h"
#include "tenant/driver.h"
#include "snapshot/dump.h"
#include "lib/fsutil.h"
#include "tenant/garp.h"
#include "tenant/net.h"
#include "migrate/handover.h"
#include "criu/imgfix.h"
#include "lib/log.h"
#include "proto/manifest.h"
#include "migrate/migrate_files.h"
#include "migrate/migrate_int.h"
#include "migrate/migrate_mode.h"
#include "migrate/reconcile.h"
#include "migrate/wire_enums.h"
#include "tenant/registry.h"
#include "tenant/uidcheck.h"
#include "transport/relay.h"
#include "transport/session.h"
#include "lib/util.h"
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
	if (session_hello_client(*out, s->o->name, &si, err) < 0) {
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
	manifest_t *m = dump_manifest_new(rec, true);
	int ret = -1;

	if (!m)
		return ferr_set(err, FX_FAIL, "out of memory");
	/* still frozen: a failed fix-up fails the migration, the tenant resumes */
	if (imgfix_dir(s->img, NULL, err) == 0 && manifest_add_dir(m, s->img, NULL, err) == 0 &&
	    mig_files_send(s->c, s->img, m, &s->r->files_raw, err) == 0)
		ret = 0;
	manifest_free(m);
	return ret;
}

static int post_dump(struct src *s, ferr_t *err)
{
	s->t_postdump = now_ns();
	if (msrc_stop_relay(s, err) < 0)
		return -1;
	return msrc_hold(s, err);
}

int msrc_send_restore(struct src *s, ferr_t *err)
{
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

static int src_notify(const char *script, pid_t pid, void *arg, ferr_t *err)
{
	struct src *s = arg;

	(void)pid;
	if (!strcmp(script, "network-lock") && !s->t_lock) {
		s->t_lock = now_ns();
		msrc_progress(s, "dump");
	}
	if (!strcmp(script, "post-dump"))
		return post_dump(s, err);
	return 0;
}

/* ---- delivering the decision ---- */

static int resolve(struct src *s, bool commit, int budget_s, ferr_t *err)
{
	Ferry__Wire__MigrateResolve rq = FERRY__WIRE__MIGRATE_RESOLVE__INIT;
	uint64_t t0 = now_ns();

	rq.migration_id = s->r->migration_id;
	rq.commit = commit;
	for (;;) {
		struct chan *c = NULL;
		struct frame_buf fb = {0};
		int r = -1;
		if (msrc_connect(s, &c, err) == 0) {
			frame_send_pb(c, MIG_REQ_RESOLVE, &rq.base);
			chan_flush(c);
			r = mig_recv(c, &fb, MIG_DONE, "DONE", NULL, err);
		}
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

/* ---- the whole thing ---- */

static int begin(struct src *s, ferr_t *err)
{
	Ferry__Wire__MigrateBegin b = FERRY__WIRE__MIGRATE_BEGIN__INIT;
	struct frame_buf fb = {0};
	int r;

	b.migration_id = s->r->migration_id;
	b.tenant = s->rec.name;
	b.has_kind = true;
	b.kind = tenant_kind_to_pb(s->rec.kind);
	b.rootfs = s->rec.rootfs[0] ? s->rec.rootfs : NULL;
	b.net_addr = s->rec.net.addr[0] ? s->rec.net.addr : NULL;
	b.host_if = s->rec.net.host_if[0] ? s->rec.net.host_if : NULL;
	b.tenant_if = s->rec.net.tenant_if[0] ? s->rec.net.tenant_if : NULL;
	b.has_mode = true;
	b.mode = mode_to_wire(s->r->mode);
	uint8_t mac[6];
	if (s->rec.net.host_if[0] && l2_get_mac(s->rec.net.host_if, mac, NULL) == 0) {
		b.has_host_if_mac = true;
		b.host_if_mac.data = mac;
		b.host_if_mac.len = sizeof(mac);
	}
	b.has_lz4 = true;
	b.lz4 = s->o->compress;
	char agent[256] = "";
	hq_fill_begin(&b, s->o->state_dir, s->o->source_agent, agent, sizeof(agent));
	if (msrc_connect(s, &s->c, err) < 0)
		return ferr_wrap(err, "connecting to %s", s->r->dest);
	frame_send_pb(s->c, MIG_REQ_BEGIN, &b.base);
	chan_flush(s->c);
	r = mig_recv(s->c, &fb, MIG_ACCEPT, "ACCEPT", NULL, err);
	frame_buf_free(&fb);
	return r;
}

static int load(struct src *s, ferr_t *err)
{
	reconcile_all(s->o->state_dir, false); /* an earlier, killed migration */
	if (registry_load(s->o->state_dir, s->o->tenant, &s->rec, err) < 0) {
		if (err->code == FX_NOTFOUND)
			return ferr_set(err, FX_NOTFOUND,
					"no tenant named %s here (see `ferry ps`)", s->o->tenant);
		return -1;
	}
	registry_refresh(s->o->state_dir, &s->rec, NULL);
	if (s->rec.state != TS_RUNNING && s->rec.state != TS_FROZEN)
		return ferr_set(err, FX_CONFLICT, "tenant %s is not running (state %s)",
				s->rec.name, tenant_state_str(s->rec.state));
	if (s->rec.kind != TK_CONTAINER && s->rec.kind != TK_PROCTREE)
		return ferr_set(err, FX_HOST, "tenant %s is a %s: it cannot be migrated yet",
				s->rec.name, tenant_kind_str(s->rec.kind));
	if (s->rec.net.addr[0] && net_check_movable(s->rec.net.addr, err) < 0)
		return ferr_wrap(err, "tenant %s cannot move its address (nothing was frozen)",
				 s->rec.name);
	return uid_check_dumpable(s->rec.name, s->rec.init_pid, err);
}

static int prepare(struct src *s, ferr_t *err)
{
	unsigned char rnd[16];
	char base[PATH_MAX];

	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return ferr_set(err, FX_FAIL, "no random bytes for a migration id");
	for (int i = 0; i < 16; i++)
		snprintf(s->r->migration_id + 2 * i, 3, "%02x", rnd[i]);
	if (xsnprintf(base, sizeof(base), err, "%s/migrations", s->o->state_dir) < 0 ||
	    fs_mkdir_p(base, 0700, err) < 0 ||
	    xsnprintf(s->img, sizeof(s->img), err, "%s/out-%s", base, s->r->migration_id) < 0 ||
	    xsnprintf(s->marker, sizeof(s->marker), err, "%s/%s.committed", base,
		      s->r->migration_id) < 0)
		return -1;
	s->tls = tls_ctx_new(s->o->tls_dir, s->o->name, false, err);
	return s->tls ? 0 : -1;
}

/* Freeze + stream + hand over. */
int msrc_stop_copy(struct src *s, ferr_t *err)
{
	struct dump_opts d = {.state_dir = s->o->state_dir,
			      .criu_path = s->o->criu_path,
			      .name = s->rec.name,
			      .images_dir = s->img,
			      .tcp_established = true,
			      .notify = src_notify,
			      .notify_arg = s,
			      .parent_img = s->parent_img,
			      .track_mem = s->track_mem};
	struct dump_result dr;
	int r;

	if (msrc_start_relay(s, err) < 0)
		return -1;
	d.ps.enabled = true;
	d.ps.fd = s->sv[0];
	msrc_progress(s, "freeze");
	r = dump_tenant(&d, &dr, err);
	ferr_t rerr = {0};
	if (msrc_stop_relay(s, &rerr) < 0 && r == 0)
		pr_warn("%s", rerr.msg);
	close(s->sv[0]);
	close(s->sv[1]);
	s->r->freeze_ms = dr.freeze_ms;
	if (r < 0 && s->commit_decided && !driver_pid_alive(s->rec.init_pid)) {
		/* CRIU got our "ok" and the source copy is gone: the decision stands */
		pr_warn("after the handover decision: %s", err->msg);
		ferr_clear(err);
		r = 0;
	}
	if (r < 0) {
		msrc_abort(s);
		unlink(s->marker);
		fs_rm_rf(s->img, NULL);
		s->r->on_source = driver_pid_alive(s->rec.init_pid);
		return ferr_wrap(err, "migration of %s to %s failed (%s)", s->rec.name, s->r->dest,
				 s->r->on_source ? "it runs on this host again"
						 : "and it is not running here");
	}
	if (msrc_commit(s, err) < 0)
		return -1;
	s->r->moved = true;
	msrc_cleanup(s);
	return 0;
}

/* The tenant stops being available at the freeze: CRIU's network-lock
 * notification comes right after it, minus CRIU's own freezing time. It is
 * available again when the destination resumed it: COMMIT sent + the
 * destination's COMMIT -> running time. */
static void msrc_timings(struct src *s)
{
	struct migrate_result *r = s->r;
	double frozen_at; /* ms since t0 */

	frozen_at = s->t_lock ? (s->t_lock - s->t0) / 1e6 - r->freeze_ms : 0;
	if (s->t_postdump)
		r->dump_ms = (s->t_postdump - s->t0) / 1e6 - frozen_at;
	r->transfer_ms = s->t_files > s->t_postdump ? (s->t_files - s->t_postdump) / 1e6 : 0;
	r->handover_ms = s->t_commit > s->t_restored ? (s->t_commit - s->t_restored) / 1e6 : 0;
	if (r->moved)
		r->downtime_ms = (s->t_commit - s->t0) / 1e6 - frozen_at + r->resume_ms;
	/* post-copy: the memory follows in the background after the resume */
	if (r->moved && s->t_pages_done > s->t_commit)
		r->pages_done_ms = (s->t_pages_done - s->t_commit) / 1e6 - r->resume_ms;
	r->wire_bytes = s->c ? chan_wire_rx(s->c) + chan_wire_tx(s->c) : 0;
	if (s->relay_chan && s->relay_chan != s->c) /* post-copy: the page session */
		r->wire_bytes += chan_wire_rx(s->relay_chan) + chan_wire_tx(s->relay_chan);
	r->total_ms = ms_since(s->t0);
}

int migrate_tenant(const struct migrate_opts *o, struct migrate_result *r, ferr_t *err)
{
	struct src s = {.o = o, .r = r, .sv = {-1, -1}};
	int ret = -1, inflight = -1;

	memset(r, 0, sizeof(*r));
	s.t0 = now_ns();
	snprintf(r->tenant, sizeof(r->tenant), "%s", o->tenant);
	snprintf(r->dest, sizeof(r->dest), "%s:%u", o->host, o->port);
	if (!tenant_name_valid(o->tenant))
		return ferr_set(err, FX_USAGE, "invalid tenant name '%s'", o->tenant);
	if (load(&s, err) < 0)
		return -1;
	r->on_source = true;
	if (mig_mode_choose(o, &r->mode, err) < 0)
		goto out;
	if (prepare(&s, err) < 0)
		goto out;
	/* locked while we live: recovery knows when we are gone (reconcile.h) */
	inflight = inflight_begin(o->state_dir, r->migration_id, &s.rec, r->dest,
				  mig_mode_str(r->mode), err);
	if (inflight < 0)
		goto out;
	msrc_progress(&s, "connect");
	if (begin(&s, err) < 0) {
		ferr_wrap(err, "%s cannot take tenant %s (it keeps running here)", r->dest,
			  s.rec.name);
		goto out;
	}
	ret = r->mode == MIG_POST_COPY	? msrc_post_copy(&s, err)
	      : r->mode == MIG_PRE_COPY ? msrc_pre_copy(&s, err)
					: msrc_stop_copy(&s, err);
	msrc_timings(&s);
	msrc_progress(&s, ret == 0 ? "done" : "failed");
out:
	inflight_end(o->state_dir, r->migration_id, inflight, !r->moved && s.restore_sent);
	if (s.relay_chan && s.relay_chan != s.c)
		chan_close(s.relay_chan);
	chan_close(s.c);
	if (s.tls)
		tls_ctx_free(s.tls);
	tenant_rec_free(&s.rec);
	r->total_ms = ms_since(s.t0);
	return ret;
}
