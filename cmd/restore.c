/* ferry restore: stage 3, verify an image set and bring its tenant back. */
#include <getopt.h>
#include <stdio.h>

#include "cmd/cmd.h"
#include "criu/locate.h"
#include "lib/json.h"
#include "snapshot/restore.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: ferry restore -D DIR [--name NAME] [--verify-only] [--json]\n\n"
		   "Check the image set in DIR (manifest magic and version, every file's size\n"
		   "and SHA-256), then restore its tenant through CRIU, detached from ferry,\n"
		   "re-plumb its network and register it as running. Nothing is started when\n"
		   "a check fails or the name is taken by a running tenant.\n\n"
		   "  -D, --images-dir DIR  the image set (from `ferry dump` or a transfer)\n"
		   "  --name NAME           register under NAME instead of the manifest's name\n"
		   "  --verify-only         only check the image set\n"
		   "  --json                print the result as a JSON object\n");
}

static void print_result(const struct restore_result *r, bool json)
{
	if (!json) {
		printf("restored %s %s as pid %d in %.1f ms (CRIU %.1f ms, checks %.1f ms)\n",
		       tenant_kind_str(r->kind), r->name, r->pid, r->total_ms, r->criu_ms,
		       r->verify_ms);
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
	jw_obj_end(&w);
	jw_finish(&w);
}

int cmd_restore(int argc, char **argv, const struct global_opts *g)
{
	static const struct option lopts[] = {
	    {"images-dir", required_argument, NULL, 'D'},
	    {"name", required_argument, NULL, 'n'},
	    {"verify-only", no_argument, NULL, 'V'},
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct restore_opts o = {.state_dir = g->state_dir};
	struct restore_result r;
	char criu[4096];
	bool json = false, verify_only = false;
	ferr_t err = {0};
	int c;

	while ((c = getopt_long(argc, argv, "D:hj", lopts, NULL)) != -1) {
		switch (c) {
		case 'D':
			o.images_dir = optarg;
			break;
		case 'n':
			o.name = optarg;
			break;
		case 'V':
			verify_only = true;
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
	if (optind < argc || !o.images_dir) {
		usage(stderr);
		return FX_USAGE;
	}
	if (verify_only) {
		if (restore_verify(o.images_dir, &err) < 0)
			return cmd_report("restore", &err);
		printf("image set %s is intact\n", o.images_dir);
		return FX_OK;
	}
	if (criu_locate(g->criu, criu, sizeof(criu), NULL, &err) < 0)
		return cmd_report("restore", &err);
	o.criu_path = criu;
	if (restore_tenant(&o, &r, &err) < 0)
		return cmd_report("restore", &err);
	print_result(&r, json);
	return FX_OK;
}
