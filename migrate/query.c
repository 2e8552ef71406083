/* The in-doubt query: the destination asks, the source host's agent answers
 * (query.h). */
#define LOG_PREFIX "handover"
#include "migrate/query.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/fsutil.h"
#include "transport/chan_sock.h"
#include "transport/chan_tls.h"
#include "lib/log.h"
#include "transport/session.h"
#include "lib/util.h"
#include "transport/wire.h"
#include "migrate/wire_enums.h"

/* the source's agent waits this long for CRIU to let go of the tenant */
#define QUERY_SETTLE_MS 8000

/* ---- destination: ask ---- */

void hq_source_of(struct hq_source *q, const Ferry__Wire__MigrateBegin *b, struct chan *c)
{
	uint16_t peer_port;

	memset(q, 0, sizeof(*q));
	if (!b->has_source_agent_port || !b->source_agent_port || b->source_agent_port > 65535)
		return;
	q->port = (uint16_t)b->source_agent_port;
	if (b->source_agent_host && *b->source_agent_host)
		snprintf(q->host, sizeof(q->host), "%s", b->source_agent_host);
	else if (parse_hostport(chan_peer(c), q->host, sizeof(q->host), &peer_port, NULL) < 0)
		return;
	snprintf(q->name, sizeof(q->name), "%s", chan_tls_peer_cn(c));
	q->known = q->name[0] != '\0';
}

int hq_ask(const struct hq_source *q, const struct req_ctx *o, const char *id, enum mig_verdict *v,
	   ferr_t *err)
{
	Ferry__Wire__MigrateStep st = FERRY__WIRE__MIGRATE_STEP__INIT;
	Ferry__Wire__MigrateVerdict *mv = NULL;
	struct session_info si;
	struct frame_buf fb = {0};
	struct tls_ctx *t;
	struct chan *c = NULL, *raw;
	int ret = -1;

	*v = MV_UNKNOWN;
	if (!q->known || !o->tls_dir)
		return ferr_set(err, FX_USAGE, "the source's agent is not known");
	t = tls_ctx_new(o->tls_dir, o->host_name, false, err);
	if (!t)
		return -1;
	raw = chan_tcp_connect(q->host, q->port, 3000, err);
	if (raw)
		c = chan_tls_client(raw, t, q->name, QUERY_SETTLE_MS + 7000, err);
	if (!c || session_hello_client(c, o->host_name, &si, err) < 0)
		goto out;
	st.migration_id = (char *)id;
	frame_send_pb(c, MIG_REQ_QUERY, &st.base);
	if (chan_flush(c) < 0) {
		chan_take_error(c, err);
		goto out;
	}
	if (frame_recv(c, &fb, err) < 0)
		goto out;
	if (fb.h.type == WIRE_ERROR) {
		session_peer_error(&fb, chan_peer(c), err);
		goto out;
	}
	if (fb.h.type != MIG_VERDICT) {
		session_unexpected(&fb, chan_peer(c), "VERDICT", err);
		goto out;
	}
	mv = wire_unpack(&ferry__wire__migrate_verdict__descriptor, fb.data, fb.h.len, err);
	if (!mv)
		goto out;
	if (strcmp(mv->migration_id, id) || verdict_from_wire(mv->verdict, v) < 0) {
		ferr_set(err, FX_INTEGRITY, "bad VERDICT from %s", chan_peer(c));
		goto out;
	}
	ret = 0;
out:
	if (mv)
		wire_free(mv);
	frame_buf_free(&fb);
	chan_close(c);
	tls_ctx_free(t);
	if (ret < 0)
		ferr_wrap(err, "asking the source's agent %s:%u", q->host, q->port);
	return ret;
}

static void report_verdict(const struct req_ctx *ctx, const char *id, enum mig_verdict v)
{
	struct event e;

	ev_init(&e, "verdict");
	ev_str(&e, "migration_id", id);
	ev_str(&e, "verdict", mig_verdict_str(v));
	ev_emit(ctx->events, &e);
}

int hq_wait_decision(const struct hq_source *q, const struct req_ctx *ctx, struct indoubt *t,
		     const char *id, int seconds)
{
	uint64_t t0 = now_ns();
	enum mig_verdict last = MV_UNKNOWN;

	for (;;) {
		enum mig_verdict v;
		ferr_t e = {0};
		int d;

		if (q->known) {
			if (hq_ask(q, ctx, id, &v, &e) == 0) {
				if (v != last)
					report_verdict(ctx, id, v);
				last = v;
				if (v == MV_COMMIT || v == MV_ABORT)
					return v == MV_COMMIT ? 1 : 0;
			} else {
				pr_debug("%s", e.msg);
			}
		}
		d = indoubt_peek(t, id);
		if (d >= 0)
			return d;
		double left = seconds - ms_since(t0) / 1000.0;
		if (left <= 0)
			return -1;
		d = indoubt_wait(t, id, 1);
		if (d >= 0)
			return d;
	}
}

/* ---- source's agent: answer ---- */

static void report_query(const struct req_ctx *ctx, const char *id, enum mig_verdict v)
{
	struct event e;

	ev_init(&e, "query");
	ev_str(&e, "migration_id", id);
	ev_str(&e, "verdict", mig_verdict_str(v));
	ev_str(&e, "peer", ctx->peer);
	ev_str(&e, "peer_name", ctx->peer_name);
	ev_emit(ctx->events, &e);
}

static int peer_path(char *p, size_t n, const char *state_dir, const char *id, ferr_t *err)
{
	return xsnprintf(p, n, err, "%s/migrations/%s.peer", state_dir, id);
}

int query_bind_peer(const char *state_dir, const char *id, const char *peer_name, ferr_t *err)
{
	char p[PATH_MAX];

	if (!peer_name || !*peer_name || peer_path(p, sizeof(p), state_dir, id, err) < 0)
		return peer_name && *peer_name ? -1 : ferr_set(err, FX_PEER, "peer without a name");
	return fs_write_atomic(p, peer_name, strlen(peer_name), 0600, err);
}

/* 1: peer_name is the one migration id went to; 0: the migration has no
 * such record here; -1: another peer's (err set). */
static int query_bound(const char *state_dir, const char *id, const char *peer_name, ferr_t *err)
{
	char p[PATH_MAX], *who = NULL;
	size_t n = 0;
	ferr_t e = {0};
	int r;

	if (peer_path(p, sizeof(p), state_dir, id, err) < 0)
		return -1;
	if (fs_read_all(p, &who, &n, 256, &e) < 0)
		return 0;
	r = strcmp(who, peer_name) ? ferr_set(err, FX_CONFLICT,
					      "migration %s went to another peer: only it may "
					      "query it",
					      id)
				   : 1;
	free(who);
	return r;
}

int query_answer(struct chan *c, const struct frame_buf *req, const struct req_ctx *o, ferr_t *err)
{
	Ferry__Wire__MigrateVerdict mv = FERRY__WIRE__MIGRATE_VERDICT__INIT;
	Ferry__Wire__MigrateStep *m =
	    wire_unpack(&ferry__wire__migrate_step__descriptor, req->data, req->h.len, err);
	enum mig_verdict v = MV_UNKNOWN;
	ferr_t e = {0};

	if (!m || !m->migration_id || !wire_set_id_ok(m->migration_id)) {
		if (m)
			ferr_set(err, FX_INTEGRITY, "QUERY without a valid migration id");
		session_send_error(c, err);
		wire_free(m);
		return -1;
	}
	int bound = query_bound(o->state_dir, m->migration_id, o->peer_name, err);
	if (bound < 0) {
		session_send_error(c, err);
		wire_free(m);
		return -1;
	}
	if (bound == 0) {
		v = MV_UNKNOWN; /* not a migration to this peer: nothing is settled */
	} else if (reconcile_migration(o->state_dir, m->migration_id, QUERY_SETTLE_MS, &v, &e) <
		   0) {
		v = MV_PENDING;
		mv.detail = e.msg;
	}
	mv.migration_id = m->migration_id;
	mv.verdict = verdict_to_wire(v);
	frame_send_pb(c, MIG_VERDICT, &mv.base);
	chan_flush(c);
	report_query(o, m->migration_id, v);
	wire_free(m);
	return chan_take_error(c, err);
}
