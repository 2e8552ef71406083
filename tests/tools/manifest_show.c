/* Test-only tool (never installed): print an image set's manifest as one
 * JSON object, for the tests to check what a dump recorded.
 *   manifest_show DIR
 * Exit 0, or 1 when DIR/manifest.ferry cannot be read. */
#include <stdio.h>

#include "lib/json.h"
#include "proto/manifest.h"

static void source_json(struct jw *w, const Ferry__SourceHost *s)
{
	jw_obj_begin(w, "source");
	jw_str(w, "hostname", s ? s->hostname : NULL);
	jw_str(w, "kernel", s ? s->kernel : NULL);
	jw_str(w, "criu_version", s ? s->criu_version : NULL);
	jw_str(w, "cpu_model", s ? s->cpu_model : NULL);
	jw_str(w, "ferry_version", s ? s->ferry_version : NULL);
	jw_obj_end(w);
}

int main(int argc, char **argv)
{
	manifest_t *m;
	ferr_t e = {0};
	struct jw w;

	if (argc != 2) {
		fprintf(stderr, "usage: manifest_show DIR\n");
		return 2;
	}
	if (manifest_read(argv[1], &m, &e) < 0) {
		fprintf(stderr, "manifest_show: %s\n", e.msg);
		return 1;
	}
	jw_init(&w, stdout);
	jw_obj_begin(&w, NULL);
	jw_str(&w, "set_id", m->set_id);
	jw_str(&w, "tenant", m->tenant_name);
	jw_int(&w, "kind", m->kind);
	jw_uint(&w, "files", m->n_files);
	source_json(&w, m->source);
	jw_obj_end(&w);
	jw_finish(&w);
	manifest_free(m);
	return 0;
}
