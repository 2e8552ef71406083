/* The agent's reporter (report.h). */
#include "agent/report.h"

#include <stdio.h>
#include <string.h>

#include "lib/json.h"
#include "lib/util.h"

void reporter_init(struct reporter *r, bool json)
{
	r->json = json;
	pthread_mutex_init(&r->lock, NULL);
	r->sink.fn = report_event;
	r->sink.arg = r;
}

void reporter_fini(struct reporter *r)
{
	pthread_mutex_destroy(&r->lock);
}

static void write_json(const struct event *e, FILE *f)
{
	struct jw w;

	jw_init(&w, f);
	jw_obj_begin(&w, NULL);
	jw_str(&w, "event", e->name);
	for (unsigned i = 0; i < e->n; i++) {
		const struct ev_field *x = &e->f[i];
		switch (x->type) {
		case EV_STR:
			jw_str(&w, x->key, x->v.s);
			break;
		case EV_INT:
			jw_int(&w, x->key, x->v.i);
			break;
		case EV_UINT:
			jw_uint(&w, x->key, x->v.u);
			break;
		case EV_DOUBLE:
			jw_double(&w, x->key, x->v.d);
			break;
		case EV_BOOL:
			jw_bool(&w, x->key, x->v.b);
			break;
		}
	}
	jw_obj_end(&w);
	jw_finish(&w);
}

static void text_transfer(const struct event *e, FILE *f)
{
	const char *set = ev_get_str(e, "set_id"), *cn = ev_get_str(e, "peer_name");
	double secs = ev_get_double(e, "seconds");
	char b1[32];

	if (!ev_get_bool(e, "ok")) {
		fprintf(f, "ferry serve: transfer%s%s from %s [%s] failed: %s\n",
			*set ? " of set " : "", set, *cn ? cn : "?", ev_get_str(e, "peer"),
			ev_get_str(e, "error"));
		return;
	}
	fprintf(f,
		"ferry serve: %s set %s (tenant %s, %u files, %s) from %s [%s]: %.1f MB/s, "
		"%.2f s%s\n",
		ev_get_bool(e, "already_present") ? "already had" : "received", set,
		ev_get_str(e, "tenant"), (unsigned)ev_get_uint(e, "files"),
		fmt_bytes(ev_get_uint(e, "total_bytes"), b1, sizeof(b1)), cn, ev_get_str(e, "peer"),
		secs > 0 ? ev_get_double(e, "raw_bytes") / secs / 1e6 : 0, secs,
		ev_get_uint(e, "resumed_from") ? " (resumed)" : "");
}

static void text_other(const struct event *e, FILE *f)
{
	const char *n = e->name;

	if (!strcmp(n, "listening"))
		fprintf(f, "ferry serve: listening on %s:%u as %s, state in %s\n",
			ev_get_str(e, "host"), (unsigned)ev_get_uint(e, "port"),
			ev_get_str(e, "name"), ev_get_str(e, "state_dir"));
	else if (!strcmp(n, "stopped"))
		fprintf(f, "ferry serve: stopped\n");
	else if (!strcmp(n, "cleaned"))
		fprintf(f,
			"ferry serve: removed %lld abandoned incoming set(s) older than %lld h\n",
			(long long)ev_get_int(e, "incoming_sets"),
			(long long)ev_get_int(e, "older_than_h"));
	else if (!strcmp(n, "migration"))
		fprintf(f,
			"ferry serve: migration %s: tenant %s runs here (pid %lld), restore %.0f "
			"ms, resumed %.1f ms after COMMIT\n",
			ev_get_str(e, "migration_id"), ev_get_str(e, "tenant"),
			(long long)ev_get_int(e, "pid"), ev_get_double(e, "restore_ms"),
			ev_get_double(e, "resume_ms"));
	else if (!strcmp(n, "verdict"))
		fprintf(f, "ferry serve: migration %s: the source's agent says: %s\n",
			ev_get_str(e, "migration_id"), ev_get_str(e, "verdict"));
	else if (!strcmp(n, "query"))
		fprintf(f, "ferry serve: %s asked for migration %s: %s\n",
			ev_get_str(e, "peer_name"), ev_get_str(e, "migration_id"),
			ev_get_str(e, "verdict"));
	else if (!strcmp(n, "request"))
		fprintf(f, "ferry serve: %s [%s]: %s\n", ev_get_str(e, "peer_name"),
			ev_get_str(e, "peer"), ev_get_str(e, "error"));
	else if (!strcmp(n, "connection"))
		fprintf(f, "ferry serve: connection from %s [%s] failed: %s\n",
			*ev_get_str(e, "peer_name") ? ev_get_str(e, "peer_name") : "?",
			ev_get_str(e, "peer"), ev_get_str(e, "error"));
	else
		fprintf(f, "ferry serve: %s\n", n);
}

static bool status(const struct event *e)
{
	return !strcmp(e->name, "listening") || !strcmp(e->name, "stopped") ||
	       !strcmp(e->name, "cleaned");
}

void report_event(const struct event *e, void *arg)
{
	struct reporter *r = arg;

	pthread_mutex_lock(&r->lock);
	if (status(e)) {
		text_other(e, stderr);
		fflush(stderr);
	}
	if (r->json)
		write_json(e, stdout);
	else if (!strcmp(e->name, "transfer"))
		text_transfer(e, stdout);
	else if (!status(e))
		text_other(e, stdout);
	fflush(stdout);
	pthread_mutex_unlock(&r->lock);
}
