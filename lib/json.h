/* A writer for --json output: one document at a time, built with jansson
 * and written compact (one line) when its top-level value is complete. */
#ifndef FERRY_JSON_H
#define FERRY_JSON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define JW_MAX_DEPTH 32

struct jw {
	FILE *f;
	int depth;
	void *stack[JW_MAX_DEPTH]; /* json_t *: the open objects and arrays */
};

void jw_init(struct jw *w, FILE *f);
/* key may be NULL inside arrays and at top level. */
void jw_obj_begin(struct jw *w, const char *key);
void jw_obj_end(struct jw *w);
void jw_arr_begin(struct jw *w, const char *key);
void jw_arr_end(struct jw *w);
void jw_str(struct jw *w, const char *key, const char *val); /* val NULL -> null */
void jw_int(struct jw *w, const char *key, int64_t val);
void jw_uint(struct jw *w, const char *key, uint64_t val);
void jw_double(struct jw *w, const char *key, double val); /* 3 decimals */
void jw_bool(struct jw *w, const char *key, bool val);
/* End of document: newline and flush. */
void jw_finish(struct jw *w);

#endif
