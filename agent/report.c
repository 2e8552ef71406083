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

static void text_listening(const struct event *e, FILE *f)
{
	fprintf(f, "ferry serve: listening on %s:%u as %s, state in %s\n", ev_get_str(e, "host"),
		(unsigned)ev_get_uint(e, "port"), ev_get_str(e, "name"),
		ev_get_str(e, "state_dir"));
}

static void text_stopped(const struct event *e, FILE *f)
{
	(void)e;
	fprintf(f, "ferry serve: stopped\n");
}

static void text_cleaned(const struct event *e, FILE *f)
{
	fprintf(f, "ferry serve: removed %lld abandoned incoming set(s) older than %lld h\n",
		(long long)ev_get_int(e, "incoming_sets"),
		(long long)ev_get_int(e, "older_than_h"));
}

static void text_migration(const struct event *e, FILE *f)
{
	fprintf(f,
		"ferry serve: migration %s: tenant %s runs here (pid %lld), restore %.0f ms, "
		"resumed %.1f ms after COMMIT\n",
		ev_get_str(e, "migration_id"), ev_get_str(e, "tenant"),
		(long long)ev_get_int(e, "pid"), ev_get_double(e, "restore_ms"),
		ev_get_double(e, "resume_ms"));
	if (ev_get_int(e, "id_remap_to")) /* its ID range was taken here */
		fprintf(f, "ferry serve: tenant %s: id range re-mapped from %lld to %lld\n",
			ev_get_str(e, "tenant"), (long long)ev_get_int(e, "id_remap_from"),
			(long long)ev_get_int(e, "id_remap_to"));
}

static void text_verdict(const struct event *e, FILE *f)
{
	fprintf(f, "ferry serve: migration %s: the source's agent says: %s\n",
		ev_get_str(e, "migration_id"), ev_get_str(e, "verdict"));
}

static void text_query(const struct event *e, FILE *f)
{
	fprintf(f, "ferry serve: %s asked for migration %s: %s\n", ev_get_str(e, "peer_name"),
		ev_get_str(e, "migration_id"), ev_get_str(e, "verdict"));
}

static void text_request(const struct event *e, FILE *f)
{
	fprintf(f, "ferry serve: %s [%s]: %s\n", ev_get_str(e, "peer_name"), ev_get_str(e, "peer"),
		ev_get_str(e, "error"));
}

static void text_connection(const struct event *e, FILE *f)
{
	const char *cn = ev_get_str(e, "peer_name");

	fprintf(f, "ferry serve: connection from %s [%s] failed: %s\n", *cn ? cn : "?",
		ev_get_str(e, "peer"), ev_get_str(e, "error"));
}

static void text_reloaded(const struct event *e, FILE *f)
{
	if (!ev_get_bool(e, "ok"))
		fprintf(f, "ferry serve: cannot reload the %s (%s), the old one stays: %s\n",
			ev_get_str(e, "what"), ev_get_str(e, "path"), ev_get_str(e, "error"));
	else
		fprintf(f, "ferry serve: reloaded the %s (%s)\n", ev_get_str(e, "what"),
			ev_get_str(e, "path"));
}

/* Every event the agent prints (report.h). status: text on stderr too. */
static const struct kind {
	const char *name;
	bool status;
	void (*text)(const struct event *e, FILE *f);
} kinds[] = {
    {"listening", true, text_listening},    {"stopped", true, text_stopped},
    {"cleaned", true, text_cleaned},	    {"transfer", false, text_transfer},
    {"migration", false, text_migration},   {"verdict", false, text_verdict},
    {"query", false, text_query},	    {"request", false, text_request},
    {"connection", false, text_connection}, {"reloaded", true, text_reloaded},
};

static const struct kind *kind_of(const struct event *e)
{
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (!strcmp(kinds[i].name, e->name))
			return &kinds[i];
	return NULL;
}

void report_event(const struct event *e, void *arg)
{
	struct reporter *r = arg;
	const struct kind *k = kind_of(e);

	pthread_mutex_lock(&r->lock);
	if (k && k->status) {
		k->text(e, stderr);
		fflush(stderr);
	}
	if (r->json)
		write_json(e, stdout);
	else if (k && !k->status)
		k->text(e, stdout);
	else if (!k)
		printf("ferry serve: %s\n", e->name);
	fflush(stdout);
	pthread_mutex_unlock(&r->lock);
}
