/* Structured events: what a library tells whoever owns the output.
 *
 * Library code never prints (lib/log.h is for diagnostics on stderr). A
 * module that must say what happened, e.g. a request handler of the host
 * agent reporting a finished transfer or migration, fills an event (a name
 * and typed fields) and hands it to the sink its caller gave it. The owner of
 * the output (the agent, agent/report.h) renders it: a text line, or one JSON
 * object per line with --json.
 *
 * Field keys and string values are borrowed: they must stay valid until
 * ev_emit returns. */
#ifndef FERRY_EVENT_H
#define FERRY_EVENT_H

#include <stdbool.h>
#include <stdint.h>

#define EV_MAX_FIELDS 24

enum ev_type { EV_STR, EV_INT, EV_UINT, EV_DOUBLE, EV_BOOL };

struct ev_field {
	const char *key;
	enum ev_type type;
	union {
		const char *s;
		int64_t i;
		uint64_t u;
		double d;
		bool b;
	} v;
};

struct event {
	const char *name; /* "transfer", "migration", ... */
	struct ev_field f[EV_MAX_FIELDS];
	unsigned n; /* fields beyond EV_MAX_FIELDS are dropped */
};

/* Where events go: fn(ev, arg). A sink with fn NULL drops them. */
struct ev_sink {
	void (*fn)(const struct event *ev, void *arg);
	void *arg;
};

void ev_init(struct event *e, const char *name);
void ev_str(struct event *e, const char *key, const char *v); /* v NULL: "" */
void ev_int(struct event *e, const char *key, int64_t v);
void ev_uint(struct event *e, const char *key, uint64_t v);
void ev_double(struct event *e, const char *key, double v);
void ev_bool(struct event *e, const char *key, bool v);

/* A field by key (NULL when absent), and typed readers with a default. */
const struct ev_field *ev_get(const struct event *e, const char *key);
const char *ev_get_str(const struct event *e, const char *key); /* "" when absent */
int64_t ev_get_int(const struct event *e, const char *key);
uint64_t ev_get_uint(const struct event *e, const char *key);
double ev_get_double(const struct event *e, const char *key);
bool ev_get_bool(const struct event *e, const char *key);

/* Hand e to sink (NULL or without fn: dropped). */
void ev_emit(const struct ev_sink *sink, const struct event *e);

#endif
