/* ferry dump: stage 1, freeze a tenant and write its images + manifest. */
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "cmd/opts.h"
#include "criu/locate.h"
#include "snapshot/dump.h"
#include "lib/json.h"
#include "lib/util.h"

struct dump_args {
	struct dump_opts o;
	bool json;
};

/* --pid: a process id; field is a pid_t. */
static int parse_pid(const char *arg, void *field, ferr_t *err)
{
	char *end;
	long v = strtol(arg, &end, 10);

	if (!*arg || *end || v <= 0 || v > INT_MAX)
		return ferr_set(err, FX_USAGE, "'%s' is not a process id", arg);
	*(pid_t *)field = (pid_t)v;
	return 0;
}

static const struct opt dump_opts[] = {
    {.name = "pid",
     .short_name = 'p',
     .type = OPT_FN,
     .off = offsetof(struct dump_args, o.pid),
     .arg = "PID",
     .parse = parse_pid,
     .help = "a process tree not started by ferry instead of NAME (registered as kind "
	     "proctree, named --name or pid-PID)"},
    {.name = "images-dir",
     .short_name = 'D',
     .type = OPT_STR,
     .off = offsetof(struct dump_args, o.images_dir),
     .arg = "DIR",
     .flags = OPT_REQUIRED,
     .help = "where the image set goes (new or empty)"},
    {.name = "leave-running",
     .type = OPT_FLAG,
     .off = offsetof(struct dump_args, o.leave_running),
     .help = "keep the tenant running after the dump"},
    {.name = "tcp-established",
     .type = OPT_FLAG,
     .off = offsetof(struct dump_args, o.tcp_established),
     .help = "save established TCP connections (the default, as `migrate` does)"},
    {.name = "no-tcp-established",
     .type = OPT_CLEAR,
     .off = offsetof(struct dump_args, o.tcp_established),
     .help = "do not save them (a tenant that has one cannot be dumped then)"},
    {.name = "with-rootfs",
     .type = OPT_FLAG,
     .off = offsetof(struct dump_args, o.with_rootfs),
     .help = "a tenant started from an image: put its own file-system layer into the set "
	     "(restore on a host that never saw it; docs/rootfs.md)"},
    {.name = "with-image",
     .type = OPT_FLAG,
     .off = offsetof(struct dump_args, o.with_image),
     .help = "with --with-rootfs: the image too, for hosts whose store lacks it"},
    {.name = "name",
     .type = OPT_STR,
     .off = offsetof(struct dump_args, o.name),
     .arg = "N",
     .help = "registry name for --pid"},
    {.name = "json",
     .short_name = 'j',
     .type = OPT_FLAG,
     .off = offsetof(struct dump_args, json),
     .help = "print the result as one JSON object"},
    {0},
};

static const struct cmd_spec dump_spec = {
    .name = "dump",
    .args = "[NAME]",
    .min_args = 0,
    .max_args = 1,
    .about = "Freeze a tenant, serialize it with CRIU into DIR (new or empty) and write the\n"
	     "ferry manifest (manifest.ferry: every file's size and SHA-256, source host,\n"
	     "ferry version, timings). The tenant is stopped afterwards unless\n"
	     "--leave-running. Give NAME, a tenant started by `ferry run`, or --pid PID.\n",
    .opts = dump_opts,
};

static void print_result(const struct dump_result *r, bool json)
{
	char sz[32];

	if (!json) {
		printf("dumped %s %s: %s in %zu files to %s, frozen %.1f ms, total %.1f ms%s\n",
		       tenant_kind_str(r->kind), r->name, fmt_bytes(r->size, sz, sizeof(sz)),
		       r->n_files, r->dir, r->frozen_ms, r->total_ms,
		       r->state == TS_RUNNING ? " (left running)" : "");
		return;
	}
	struct jw w;
	jw_init(&w, stdout);
	jw_obj_begin(&w, NULL);
	jw_str(&w, "tenant", r->name);
	jw_str(&w, "kind", tenant_kind_str(r->kind));
	jw_str(&w, "state", tenant_state_str(r->state));
	jw_str(&w, "dir", r->dir);
	jw_str(&w, "set_id", r->set_id);
	jw_uint(&w, "size", r->size);
	jw_uint(&w, "files", r->n_files);
	jw_double(&w, "freeze_ms", r->freeze_ms);
	jw_double(&w, "frozen_ms", r->frozen_ms);
	jw_double(&w, "mem_dump_ms", r->mem_dump_ms);
	jw_double(&w, "mem_write_ms", r->mem_write_ms);
	jw_double(&w, "criu_ms", r->criu_ms);
	jw_double(&w, "total_ms", r->total_ms);
	jw_obj_end(&w);
	jw_finish(&w);
}

int cmd_dump(int argc, char **argv, const struct global_opts *g)
{
	struct dump_args a = {.o.state_dir = g->state_dir, .o.tcp_established = true};
	struct dump_result r;
	char criu[4096];
	ferr_t err = {0};
	int pos, rc;

	if ((rc = opts_parse(&dump_spec, &a, argc, argv, &pos)) != OPTS_RUN)
		return rc;
	if (pos < argc) {
		if (a.o.pid > 0 || a.o.name) {
			fprintf(stderr, "ferry dump: give a tenant NAME or --pid PID, not both\n");
			return FX_USAGE;
		}
		a.o.name = argv[pos];
	}
	if (!a.o.name && a.o.pid <= 0)
		return opts_usage_error(&dump_spec, "a tenant NAME or --pid PID is needed");
	if (criu_locate(g->criu, criu, sizeof(criu), NULL, &err) < 0)
		return cmd_report("dump", &err);
	a.o.criu_path = criu;
	if (dump_tenant(&a.o, &r, &err) < 0)
		return cmd_report("dump", &err);
	print_result(&r, a.json);
	return FX_OK;
}
