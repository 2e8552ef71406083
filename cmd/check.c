/* ferry check: host-readiness report. */
#include <stdio.h>
#include <string.h>

#include "cmd/cmd.h"
#include "cmd/opts.h"
#include "tenant/hostcheck.h"
#include "lib/json.h"

static void print_json(const struct hostcheck_report *r)
{
	struct jw w;

	jw_init(&w, stdout);
	jw_obj_begin(&w, NULL);
	jw_bool(&w, "ready", r->ready);
	jw_str(&w, "kernel", r->kernel);
	jw_obj_begin(&w, "criu");
	jw_str(&w, "path", r->criu_path[0] ? r->criu_path : NULL);
	jw_str(&w, "source", r->criu_path[0] ? r->criu_source : NULL);
	jw_str(&w, "version", r->criu_version[0] ? r->criu_version : NULL);
	jw_obj_end(&w);
	jw_arr_begin(&w, "items");
	for (size_t i = 0; i < r->n_items; i++) {
		jw_obj_begin(&w, NULL);
		jw_str(&w, "id", r->items[i].id);
		jw_str(&w, "status", hc_status_str(r->items[i].status));
		jw_str(&w, "detail", r->items[i].detail);
		jw_obj_end(&w);
	}
	jw_arr_end(&w);
	jw_arr_begin(&w, "modes");
	for (int m = 0; m < HC_NMODES; m++) {
		jw_obj_begin(&w, NULL);
		jw_str(&w, "name", r->modes[m].name);
		jw_bool(&w, "available", r->modes[m].available);
		jw_str(&w, "note", r->modes[m].note);
		jw_obj_end(&w);
	}
	jw_arr_end(&w);
	jw_obj_end(&w);
	jw_finish(&w);
}

static void print_text(const struct hostcheck_report *r)
{
	printf("Host: %s\n\n", r->kernel);
	for (size_t i = 0; i < r->n_items; i++)
		printf("  %-4s  %-16s %s\n", hc_status_str(r->items[i].status), r->items[i].id,
		       r->items[i].detail);
	printf("\nMigration modes on this host:\n");
	for (int m = 0; m < HC_NMODES; m++)
		printf("  %-10s %-4s %s\n", r->modes[m].name, r->modes[m].available ? "yes" : "no",
		       r->modes[m].note);
	printf("\n%s\n", r->ready ? "Ready: tenants can be dumped and restored on this host."
				  : "NOT ready: tenants cannot be dumped or restored here.");
	for (size_t i = 0; r->ready && i < r->n_items; i++)
		if (!strcmp(r->items[i].id, "other-users") && r->items[i].status != HC_OK)
			printf("Except tenants with processes of other users (see other-users),\n"
			       "unless they run in a user namespace of their own (--userns).\n");
}

struct check_args {
	struct hostcheck_opts o;
	bool json;
};

static const struct opt check_opts[] = {
    {.name = "criu",
     .type = OPT_STR,
     .off = offsetof(struct check_args, o.criu),
     .arg = "PATH",
     .help = "check this CRIU binary (as the global --criu)"},
    {.name = "json",
     .type = OPT_FLAG,
     .off = offsetof(struct check_args, json),
     .help = "print the report as one JSON object"},
    {0},
};

static const struct cmd_spec check_spec = {
    .name = "check",
    .about = "Report whether this host can dump, restore and migrate tenants: the CRIU found\n"
	     "and whether 'criu check' passes, the kernel features that decide which\n"
	     "migration modes work (dirty memory tracking, userfaultfd, pipe limits,\n"
	     "nftables network lock, TCP repair), what isolates tenants (cgroups, user\n"
	     "namespaces, idmapped mounts, seccomp), then the modes available.\n"
	     "Each item is OK, WARN (a mode is unavailable) or FAIL (nothing works).\n",
    .notes = "Exit code 0 when dump and restore work here, 7 otherwise.\n",
    .opts = check_opts,
};

int cmd_check(int argc, char **argv, const struct global_opts *g)
{
	struct check_args a = {.o.criu = g->criu, .o.state_dir = g->state_dir};
	struct hostcheck_report r;
	ferr_t err = {0};
	int pos, rc;

	if ((rc = opts_parse(&check_spec, &a, argc, argv, &pos)) != OPTS_RUN)
		return rc;
	if (hostcheck_run(&a.o, &r, &err) < 0)
		return cmd_report("check", &err);
	if (a.json)
		print_json(&r);
	else
		print_text(&r);
	return r.ready ? 0 : FX_HOST;
}
