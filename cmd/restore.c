/* ferry restore: stage 3, verify an image set and bring its tenant back. */
#include <stddef.h>
#include <stdio.h>

#include "cmd/cmd.h"
#include "cmd/opts.h"
#include "criu/locate.h"
#include "lib/json.h"
#include "snapshot/restore.h"

struct restore_args {
	struct restore_opts o;
	bool verify_only;
	bool json;
};

static const struct opt restore_opts[] = {
    {.name = "images-dir",
     .short_name = 'D',
     .type = OPT_STR,
     .off = offsetof(struct restore_args, o.images_dir),
     .arg = "DIR",
     .flags = OPT_REQUIRED,
     .help = "the image set (from `ferry dump` or a transfer)"},
    {.name = "name",
     .type = OPT_STR,
     .off = offsetof(struct restore_args, o.name),
     .arg = "NAME",
     .help = "register under NAME instead of the manifest's name"},
    {.name = "verify-only",
     .type = OPT_FLAG,
     .off = offsetof(struct restore_args, verify_only),
     .help = "only check the image set"},
    {.name = "json",
     .short_name = 'j',
     .type = OPT_FLAG,
     .off = offsetof(struct restore_args, json),
     .help = "print the result as one JSON object"},
    {0},
};

static const struct cmd_spec restore_spec = {
    .name = "restore",
    .about = "Check the image set in DIR (manifest magic and version, every file's size\n"
	     "and SHA-256), then restore its tenant through CRIU, detached from ferry,\n"
	     "re-plumb its network and register it as running. Nothing is started when\n"
	     "a check fails or the name is taken by a running tenant. A tenant whose user-\n"
	     "namespace ID range another tenant here holds (e.g. a copy under --name beside\n"
	     "its original) is re-mapped to a free range, its files shifted to it; a copy\n"
	     "that would share a --rootfs tree with another tenant is refused.\n",
    .opts = restore_opts,
};

static void print_result(const struct restore_result *r, bool json)
{
	if (!json) {
		printf("restored %s %s as pid %d in %.1f ms (CRIU %.1f ms, checks %.1f ms)\n",
		       tenant_kind_str(r->kind), r->name, r->pid, r->total_ms, r->criu_ms,
		       r->verify_ms);
		if (r->id_to)
			printf("id range re-mapped from %u-%u to %u-%u (its range is another "
			       "tenant's on this host)\n",
			       r->id_from, r->id_from + 65535, r->id_to, r->id_to + 65535);
		return;
	}
	struct jw w;
	jw_init(&w, stdout);
	jw_obj_begin(&w, NULL);
	jw_str(&w, "tenant", r->name);
	jw_str(&w, "kind", tenant_kind_str(r->kind));
	jw_int(&w, "pid", r->pid);
	jw_str(&w, "dir", r->dir);
	jw_str(&w, "set_id", r->set_id);
	jw_uint(&w, "size", r->size);
	jw_double(&w, "verify_ms", r->verify_ms);
	jw_double(&w, "criu_ms", r->criu_ms);
	jw_double(&w, "criu_restore_ms", r->criu_restore_ms);
	jw_double(&w, "restore_ms", r->total_ms);
	if (r->id_to) {
		jw_obj_begin(&w, "id_remap");
		jw_uint(&w, "from", r->id_from);
		jw_uint(&w, "to", r->id_to);
		jw_obj_end(&w);
	}
	jw_obj_end(&w);
	jw_finish(&w);
}

int cmd_restore(int argc, char **argv, const struct global_opts *g)
{
	struct restore_args a = {.o.state_dir = g->state_dir};
	struct restore_result r;
	char criu[4096];
	ferr_t err = {0};
	int pos, rc;

	if ((rc = opts_parse(&restore_spec, &a, argc, argv, &pos)) != OPTS_RUN)
		return rc;
	if (a.verify_only) {
		if (restore_verify(a.o.images_dir, &err) < 0)
			return cmd_report("restore", &err);
		printf("image set %s is intact\n", a.o.images_dir);
		return FX_OK;
	}
	if (criu_locate(g->criu, criu, sizeof(criu), NULL, &err) < 0)
		return cmd_report("restore", &err);
	a.o.criu_path = criu;
	if (restore_tenant(&a.o, &r, &err) < 0)
		return cmd_report("restore", &err);
	print_result(&r, a.json);
	return FX_OK;
}
