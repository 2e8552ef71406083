/* lib/json.c: the --json writer on jansson. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "lib/json.h"
#include "unit.h"

/* Run fn on a writer into memory; the text written. */
static char *capture(void (*fn)(struct jw *w))
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	struct jw w;

	jw_init(&w, f);
	fn(&w);
	jw_finish(&w);
	fclose(f);
	return buf;
}

static void doc(struct jw *w)
{
	jw_obj_begin(w, NULL);
	jw_str(w, "name", "a \"quoted\"\nline\t\x01");
	jw_str(w, "none", NULL);
	jw_int(w, "neg", -5);
	jw_uint(w, "big", 18446744073709551615ull);
	jw_double(w, "ms", 12.34567);
	jw_double(w, "nan", 0.0 / 0.0);
	jw_bool(w, "ok", true);
	jw_arr_begin(w, "list");
	jw_int(w, NULL, 1);
	jw_obj_begin(w, NULL);
	jw_str(w, "k", "v");
	jw_obj_end(w);
	jw_arr_end(w);
	jw_obj_begin(w, "empty");
	jw_obj_end(w);
	jw_obj_end(w);
}

static void test_document(void)
{
	char *s = capture(doc);
	json_error_t e;

	CHECK(s && strchr(s, '\n') == s + strlen(s) - 1); /* one line */
	json_t *j = s ? json_loads(s, 0, &e) : NULL;
	CHECK(j != NULL);
	CHECK(!strcmp(json_string_value(json_object_get(j, "name")), "a \"quoted\"\nline\t\x01"));
	CHECK(json_is_null(json_object_get(j, "none")));
	CHECK(json_integer_value(json_object_get(j, "neg")) == -5);
	CHECK(json_integer_value(json_object_get(j, "big")) == INT64_MAX);
	CHECK(json_real_value(json_object_get(j, "ms")) == 12.346);
	CHECK(json_is_null(json_object_get(j, "nan")));
	CHECK(json_is_true(json_object_get(j, "ok")));
	json_t *l = json_object_get(j, "list");
	CHECK(json_array_size(l) == 2);
	CHECK(!strcmp(json_string_value(json_object_get(json_array_get(l, 1), "k")), "v"));
	CHECK(json_object_size(json_object_get(j, "empty")) == 0);
	/* the keys in the order written */
	CHECK(s && strstr(s, "{\"name\":") == s);
	json_decref(j);
	free(s);
}

static void unclosed(struct jw *w)
{
	jw_obj_begin(w, NULL);
	jw_arr_begin(w, "a");
	jw_str(w, NULL, "bad \xff byte");
}

static void test_unclosed_and_bytes(void)
{
	char *s = capture(unclosed);
	json_error_t e;
	json_t *j = s ? json_loads(s, 0, &e) : NULL;

	CHECK(j != NULL); /* jw_finish closes what is open */
	CHECK(json_array_size(json_object_get(j, "a")) == 1);
	json_decref(j);
	free(s);
}

int main(void)
{
	RUN(test_document);
	RUN(test_unclosed_and_bytes);
	UNIT_DONE();
}
