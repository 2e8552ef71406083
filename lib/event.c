/* Structured events (event.h). */
#include "lib/event.h"

#include <string.h>

void ev_init(struct event *e, const char *name)
{
	e->name = name;
	e->n = 0;
}

static struct ev_field *add(struct event *e, const char *key, enum ev_type t)
{
	struct ev_field *f;

	if (e->n >= EV_MAX_FIELDS)
		return NULL;
	f = &e->f[e->n++];
	f->key = key;
	f->type = t;
	return f;
}

void ev_str(struct event *e, const char *key, const char *v)
{
	struct ev_field *f = add(e, key, EV_STR);

	if (f)
		f->v.s = v ? v : "";
}

void ev_int(struct event *e, const char *key, int64_t v)
{
	struct ev_field *f = add(e, key, EV_INT);

	if (f)
		f->v.i = v;
}

void ev_uint(struct event *e, const char *key, uint64_t v)
{
	struct ev_field *f = add(e, key, EV_UINT);

	if (f)
		f->v.u = v;
}

void ev_double(struct event *e, const char *key, double v)
{
	struct ev_field *f = add(e, key, EV_DOUBLE);

	if (f)
		f->v.d = v;
}

void ev_bool(struct event *e, const char *key, bool v)
{
	struct ev_field *f = add(e, key, EV_BOOL);

	if (f)
		f->v.b = v;
}

const struct ev_field *ev_get(const struct event *e, const char *key)
{
	for (unsigned i = 0; i < e->n; i++)
		if (!strcmp(e->f[i].key, key))
			return &e->f[i];
	return NULL;
}

const char *ev_get_str(const struct event *e, const char *key)
{
	const struct ev_field *f = ev_get(e, key);

	return f && f->type == EV_STR ? f->v.s : "";
}

static double as_double(const struct ev_field *f)
{
	switch (f->type) {
	case EV_INT:
		return (double)f->v.i;
	case EV_UINT:
		return (double)f->v.u;
	case EV_DOUBLE:
		return f->v.d;
	case EV_BOOL:
		return f->v.b;
	case EV_STR:
		break;
	}
	return 0;
}

int64_t ev_get_int(const struct event *e, const char *key)
{
	const struct ev_field *f = ev_get(e, key);

	if (!f)
		return 0;
	return f->type == EV_INT ? f->v.i : f->type == EV_UINT ? (int64_t)f->v.u : 0;
}

uint64_t ev_get_uint(const struct event *e, const char *key)
{
	const struct ev_field *f = ev_get(e, key);

	if (!f)
		return 0;
	return f->type == EV_UINT ? f->v.u : f->type == EV_INT ? (uint64_t)f->v.i : 0;
}

double ev_get_double(const struct event *e, const char *key)
{
	const struct ev_field *f = ev_get(e, key);

	return f ? as_double(f) : 0;
}

bool ev_get_bool(const struct event *e, const char *key)
{
	const struct ev_field *f = ev_get(e, key);

	return f && f->type == EV_BOOL && f->v.b;
}

void ev_emit(const struct ev_sink *sink, const struct event *e)
{
	if (sink && sink->fn)
		sink->fn(e, sink->arg);
}
