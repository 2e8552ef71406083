#include "lib/json.h"

#include <math.h>

void jw_init(struct jw *w, FILE *f)
{
	w->f = f;
	w->depth = 0;
	w->need_comma[0] = false;
}

static void put_escaped(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		switch (*p) {
		case '"':
			fputs("\\\"", f);
			break;
		case '\\':
			fputs("\\\\", f);
			break;
		case '\n':
			fputs("\\n", f);
			break;
		case '\r':
			fputs("\\r", f);
			break;
		case '\t':
			fputs("\\t", f);
			break;
		default:
			if (*p < 0x20)
				fprintf(f, "\\u%04x", *p);
			else
				fputc(*p, f);
		}
	}
	fputc('"', f);
}

static void prefix(struct jw *w, const char *key)
{
	if (w->need_comma[w->depth])
		fputc(',', w->f);
	w->need_comma[w->depth] = true;
	if (key) {
		put_escaped(w->f, key);
		fputc(':', w->f);
	}
}

void jw_obj_begin(struct jw *w, const char *key)
{
	prefix(w, key);
	fputc('{', w->f);
	if (w->depth < JW_MAX_DEPTH - 1)
		w->depth++;
	w->need_comma[w->depth] = false;
}

void jw_obj_end(struct jw *w)
{
	fputc('}', w->f);
	if (w->depth > 0)
		w->depth--;
}

void jw_arr_begin(struct jw *w, const char *key)
{
	prefix(w, key);
	fputc('[', w->f);
	if (w->depth < JW_MAX_DEPTH - 1)
		w->depth++;
	w->need_comma[w->depth] = false;
}

void jw_arr_end(struct jw *w)
{
	fputc(']', w->f);
	if (w->depth > 0)
		w->depth--;
}

void jw_str(struct jw *w, const char *key, const char *val)
{
	prefix(w, key);
	if (val)
		put_escaped(w->f, val);
	else
		fputs("null", w->f);
}

void jw_int(struct jw *w, const char *key, int64_t val)
{
	prefix(w, key);
	fprintf(w->f, "%lld", (long long)val);
}

void jw_uint(struct jw *w, const char *key, uint64_t val)
{
	prefix(w, key);
	fprintf(w->f, "%llu", (unsigned long long)val);
}

void jw_double(struct jw *w, const char *key, double val)
{
	prefix(w, key);
	if (isfinite(val))
		fprintf(w->f, "%.3f", val);
	else
		fputs("null", w->f);
}

void jw_bool(struct jw *w, const char *key, bool val)
{
	prefix(w, key);
	fputs(val ? "true" : "false", w->f);
}

void jw_finish(struct jw *w)
{
	fputc('\n', w->f);
	fflush(w->f);
}
