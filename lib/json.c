/* lib/json.h on jansson: values go into the innermost open object or array;
 * a top-level value is written out as soon as it is complete. */
#include "lib/json.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Compact, and doubles as written by jw_double (rounded to 3 decimals). */
#define JW_DUMP_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(15))

void jw_init(struct jw *w, FILE *f)
{
	w->f = f;
	w->depth = 0;
}

static void emit(struct jw *w, json_t *v)
{
	if (v && json_dumpf(v, w->f, JW_DUMP_FLAGS | JSON_ENCODE_ANY) < 0)
		clearerr(w->f); /* the caller's fflush/fclose reports it */
}

/* Put v (a new reference, taken over) under key into the open container,
 * or write it out at top level. */
static void put(struct jw *w, const char *key, json_t *v)
{
	if (!v)
		v = json_null();
	if (w->depth == 0) {
		emit(w, v);
		json_decref(v);
		return;
	}
	json_t *top = w->stack[w->depth - 1];
	if (json_is_object(top))
		json_object_set_new(top, key ? key : "", v);
	else
		json_array_append_new(top, v);
}

static void open_container(struct jw *w, const char *key, json_t *c)
{
	if (w->depth == JW_MAX_DEPTH) { /* too deep: nested values are dropped */
		json_decref(c);
		c = NULL;
	}
	if (c && w->depth > 0)
		put(w, key, json_incref(c));
	w->stack[w->depth < JW_MAX_DEPTH ? w->depth : JW_MAX_DEPTH - 1] = c;
	if (w->depth < JW_MAX_DEPTH)
		w->depth++;
}

static void close_container(struct jw *w)
{
	if (w->depth == 0)
		return;
	json_t *c = w->stack[--w->depth];
	if (w->depth == 0)
		emit(w, c);
	json_decref(c);
}

void jw_obj_begin(struct jw *w, const char *key)
{
	open_container(w, key, json_object());
}

void jw_obj_end(struct jw *w)
{
	close_container(w);
}

void jw_arr_begin(struct jw *w, const char *key)
{
	open_container(w, key, json_array());
}

void jw_arr_end(struct jw *w)
{
	close_container(w);
}

void jw_str(struct jw *w, const char *key, const char *val)
{
	/* not UTF-8 (a name from a peer, a file name): byte-wise, as Latin-1 */
	json_t *v = val ? json_string(val) : json_null();
	if (val && !v) {
		char *u = malloc(strlen(val) * 2 + 1), *o = u;
		for (const unsigned char *p = (const unsigned char *)val; u && *p; p++) {
			if (*p < 0x80) {
				*o++ = (char)*p;
			} else {
				*o++ = (char)(0xc0 | *p >> 6);
				*o++ = (char)(0x80 | (*p & 0x3f));
			}
		}
		if (u) {
			*o = 0;
			v = json_string(u);
		}
		free(u);
	}
	put(w, key, v);
}

void jw_int(struct jw *w, const char *key, int64_t val)
{
	put(w, key, json_integer((json_int_t)val));
}

void jw_uint(struct jw *w, const char *key, uint64_t val)
{
	put(w, key, json_integer(val > INT64_MAX ? INT64_MAX : (json_int_t)val));
}

void jw_double(struct jw *w, const char *key, double val)
{
	put(w, key, isfinite(val) ? json_real(round(val * 1000.0) / 1000.0) : json_null());
}

void jw_bool(struct jw *w, const char *key, bool val)
{
	put(w, key, json_boolean(val));
}

void jw_finish(struct jw *w)
{
	while (w->depth > 0)
		close_container(w);
	fputc('\n', w->f);
	fflush(w->f);
}
