/* The destination asks the source host's agent (handover_query.h). */
#define LOG_PREFIX "handover"
#include "migrate/handover_query.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "transport/chan_sock.h"
#include "transport/chan_tls.h"
#include "lib/fsutil.h"
#include "migrate/handover_indoubt.h"
#include "lib/log.h"
#include "transport/session.h"
#include "lib/util.h"
#include "transport/wire.h"
#include "migrate/wire_enums.h"

#define AGENT_FILE "agent.addr"
/* the source's agent waits this long for CRIU to let go of the tenant */
#define QUERY_SETTLE_MS 8000

/* ---- where the agent listens ---- */

int hq_record_agent(const char *state_dir, const char *host, uint16_t port, ferr_t *err)
{
	char p[PATH_MAX], line[320];
	int n;

	if (xsnprintf(p, sizeof(p), err, "%s/" AGENT_FILE, state_dir) < 0)
		return -1;
	n = snprintf(line, sizeof(line), strchr(host, ':') ? "[%s]:%u\n" : "%s:%u\n", host, port);
	return fs_write_atomic(p, line, (size_t)n, 0600, err);
}

void hq_forget_agent(const char *state_dir)
{
	char p[PATH_MAX];

	if (xsnprintf(p, sizeof(p), NULL, "%s/" AGENT_FILE, state_dir) == 0)
		unlink(p);
}

static bool wildcard_or_loopback(const char *h)
{
	return !*h || !strcmp(h, "0.0.0.0") || !strcmp(h, "::") || !strncmp(h, "127.", 4) ||
	       !strcmp(h, "::1") || !strcmp(h, "localhost");
}

void hq_fill_begin(Ferry__Wire__MigrateBegin *b, const char *state_dir, const char *explicit,
		   char *hostbuf, size_t len)
{
	char p[PATH_MAX], *buf = NULL;
	uint16_t port;

	if (explicit) {
		if (parse_hostport(explicit, hostbuf, len, &port, NULL) < 0)
			return;
	} else {
		if (xsnprintf(p, sizeof(p), NULL, "%s/" AGENT_FILE, state_dir) < 0 ||
		    fs_read_all(p, &buf, NULL, 4096, NULL) < 0)
			return; /* no agent here: the destination cannot ask */
		buf[strcspn(buf, "\n")] = '\0';
		int r = parse_hostport(buf, hostbuf, len, &port, NULL);
		free(buf);
		if (r < 0)
			return;
		if (wildcard_or_loopback(hostbuf))
			hostbuf[0] = '\0'; /* the destination uses the session's peer address */
	}
	b->has_source_agent_port = true;
	b->source_agent_port = port;
	b->source_agent_host = hostbuf[0] ? hostbuf : NULL;
}

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

int hq_ask(const struct hq_source *q, const struct handover_opts *o, const char *id,
	   enum mig_verdict *v, ferr_t *err)
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

int hq_wait_decision(const struct hq_source *q, const struct handover_opts *o, const char *id,
		     int seconds)
{
	uint64_t t0 = now_ns();
	enum mig_verdict last = MV_UNKNOWN;

	for (;;) {
		enum mig_verdict v;
		ferr_t e = {0};
		int d;

		if (q->known) {
			if (hq_ask(q, o, id, &v, &e) == 0) {
				if (v != last) {
					printf(
					    "ferry serve: migration %s: the source's agent says: "
					    "%s\n",
					    id, mig_verdict_str(v));
					fflush(stdout);
				}
				last = v;
				if (v == MV_COMMIT || v == MV_ABORT)
					return v == MV_COMMIT ? 1 : 0;
			} else {
				pr_debug("%s", e.msg);
			}
		}
		d = indoubt_peek(id);
		if (d >= 0)
			return d;
		double left = seconds - ms_since(t0) / 1000.0;
		if (left <= 0)
			return -1;
		d = indoubt_wait(id, 1);
		if (d >= 0)
			return d;
	}
}

/* ---- source's agent: answer ---- */

int handover_query(struct chan *c, const struct frame_buf *req, const struct handover_opts *o,
		   ferr_t *err)
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
	if (reconcile_migration(o->state_dir, m->migration_id, QUERY_SETTLE_MS, &v, &e) < 0) {
		v = MV_PENDING;
		mv.detail = e.msg;
	}
	mv.migration_id = m->migration_id;
	mv.verdict = verdict_to_wire(v);
	frame_send_pb(c, MIG_VERDICT, &mv.base);
	chan_flush(c);
	printf("ferry serve: %s asked for migration %s: %s\n", chan_tls_peer_cn(c), m->migration_id,
	       mig_verdict_str(v));
	fflush(stdout);
	wire_free(m);
	return chan_take_error(c, err);
}
