/* ferry check: host-readiness report. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cmd/cmd.h"
#include "tenant/hostcheck.h"
#include "lib/json.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: ferry check [--criu PATH] [--json]\n\n"
		"Report whether this host can dump, restore and migrate tenants: the CRIU found\n"
		"and whether 'criu check' passes, the kernel features that decide which\n"
		"migration modes work (dirty memory tracking, userfaultfd, pipe limits,\n"
		"nftables network lock, TCP repair, KVM and QEMU), then the modes available.\n"
		"Each item is OK, WARN (a mode is unavailable) or FAIL (nothing works).\n"
		"Exit code 0 when dump and restore work here, 7 otherwise.\n");
}

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
			printf("Except tenants with processes of other users (see other-users).\n");
}

int cmd_check(int argc, char **argv, const struct global_opts *g)
{
	static const struct option opts[] = {
	    {"json", no_argument, NULL, 'j'},
	    {"criu", required_argument, NULL, 'c'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct hostcheck_opts o = {.criu = g->criu, .state_dir = g->state_dir};
	struct hostcheck_report r;
	bool json = false;
	ferr_t err = {0};
	int c;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			json = true;
			break;
		case 'c':
			o.criu = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return FX_USAGE;
		}
	}
	if (optind < argc) {
		usage(stderr);
		return FX_USAGE;
	}
	if (hostcheck_run(&o, &r, &err) < 0)
		return cmd_report("check", &err);
	if (json)
		print_json(&r);
	else
		print_text(&r);
	return r.ready ? 0 : FX_HOST;
}
