/* ferry dump: stage 1, freeze a tenant and write its images + manifest. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "criu/locate.h"
#include "snapshot/dump.h"
#include "lib/json.h"
#include "lib/util.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: ferry dump NAME|--pid PID -D DIR [--leave-running] [--no-tcp-established]\n"
		"                  [--name N] [--json]\n\n"
		"Freeze a tenant, serialize it with CRIU into DIR (new or empty) and write the\n"
		"ferry manifest (manifest.ferry: every file's size and SHA-256, source host,\n"
		"timings). The tenant is stopped afterwards unless --leave-running.\n\n"
		"  NAME               a tenant started by `ferry run`\n"
		"  --pid PID          a process tree not started by ferry (registered as kind\n"
		"                     proctree, named --name or pid-PID)\n"
		"  -D, --images-dir DIR  where the image set goes\n"
		"  --leave-running    keep the tenant running after the dump\n"
		"  --no-tcp-established  do not save established TCP connections (they are\n"
		"                     saved by default, as `migrate` does; with this a tenant\n"
		"                     that has one cannot be dumped). --tcp-established is\n"
		"                     accepted and is the default\n"
		"  --name N           registry name for --pid\n"
		"  --json             print the result as a JSON object\n");
}

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
	static const struct option lopts[] = {
	    {"pid", required_argument, NULL, 'p'},
	    {"images-dir", required_argument, NULL, 'D'},
	    {"leave-running", no_argument, NULL, 'R'},
	    {"tcp-established", no_argument, NULL, 'T'},
	    {"no-tcp-established", no_argument, NULL, 'N'},
	    {"name", required_argument, NULL, 'n'},
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct dump_opts o = {.state_dir = g->state_dir, .tcp_established = true};
	struct dump_result r;
	char criu[4096], *end;
	bool json = false;
	ferr_t err = {0};
	int c;

	while ((c = getopt_long(argc, argv, "p:D:hj", lopts, NULL)) != -1) {
		switch (c) {
		case 'p':
			o.pid = (pid_t)strtol(optarg, &end, 10);
			if (*end || o.pid <= 0) {
				fprintf(stderr, "ferry dump: bad --pid '%s'\n", optarg);
				return FX_USAGE;
			}
			break;
		case 'D':
			o.images_dir = optarg;
			break;
		case 'R':
			o.leave_running = true;
			break;
		case 'T':
			o.tcp_established = true;
			break;
		case 'N':
			o.tcp_established = false;
			break;
		case 'n':
			o.name = optarg;
			break;
		case 'j':
			json = true;
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
		if (o.pid > 0 || o.name) {
			fprintf(stderr, "ferry dump: give a tenant NAME or --pid PID, not both\n");
			return FX_USAGE;
		}
		o.name = argv[optind++];
	}
	if (optind < argc || !o.images_dir || (!o.name && o.pid <= 0)) {
		usage(stderr);
		return FX_USAGE;
	}
	if (criu_locate(g->criu, criu, sizeof(criu), NULL, &err) < 0)
		return cmd_report("dump", &err);
	o.criu_path = criu;
	if (dump_tenant(&o, &r, &err) < 0)
		return cmd_report("dump", &err);
	print_result(&r, json);
	return FX_OK;
}
