/* ferry serve: the host agent (transport/serve.h). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "agent/serve.h"
#include "lib/util.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: ferry serve --listen ADDR:PORT --tls DIR --name NAME [--json]\n"
		"                   [--max-conns N] [--timeout SECONDS] [--keep-incoming HOURS]\n"
		"                   [--config FILE]\n\n"
		"Host agent: accepts TLS 1.3 connections from hosts whose certificates are\n"
		"signed by DIR/ca.pem. It receives image sets (`ferry send`) into the state\n"
		"directory:\n"
		"  STATE/incoming/<peer>/<set_id>/  while a set arrives (kept for resuming)\n"
		"  STATE/sets/<peer>/<set_id>/      once every file is complete and verified\n"
		"(<peer>: the name in the sender's certificate)\n"
		"and takes incoming live migrations (`ferry migrate`, `ferry evacuate`):\n"
		"it restores the tenant here, holds it stopped until the source commits,\n"
		"then resumes it and registers it (see docs/migrate.md). It also answers a\n"
		"destination that lost a `ferry migrate` of this host (STATE/agent.addr says\n"
		"where it listens), and at start settles what killed migrations left.\n"
		"Runs until SIGTERM or SIGINT. One log line per transfer or migration\n"
		"(--json: one JSON object per line).\n\n"
		"  --listen ADDR:PORT     address to listen on (0.0.0.0:PORT for all)\n"
		"  --tls DIR --name NAME  CA DIR/ca.pem, identity DIR/NAME.pem + DIR/NAME.key\n"
		"  --max-conns N          concurrent requests (default 8)\n"
		"  --config FILE          which peers may make which requests (docs/security.md;\n"
		"                         default: every peer the CA signed); reloaded when it\n"
		"                         changes or on SIGHUP (DIR/crl.pem and DIR/NAME.pem\n"
		"                         too, when they change)\n"
		"  --timeout SECONDS      drop a connection silent this long (default 60)\n"
		"  --keep-incoming HOURS  at start, remove incoming sets untouched this long\n"
		"                         (default 24)\n");
}

int cmd_serve(int argc, char **argv, const struct global_opts *g)
{
	static const struct option opts[] = {
	    {"listen", required_argument, NULL, 'l'},
	    {"tls", required_argument, NULL, 't'},
	    {"name", required_argument, NULL, 'n'},
	    {"json", no_argument, NULL, 'j'},
	    {"max-conns", required_argument, NULL, 'm'},
	    {"timeout", required_argument, NULL, 'T'},
	    {"keep-incoming", required_argument, NULL, 'k'},
	    {"config", required_argument, NULL, 'c'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct serve_opts o = {
	    .state_dir = g->state_dir,
	    .max_conns = 8,
	    .timeout_ms = 60000,
	    .keep_incoming_h = 24,
	    .threads = 2,
	};
	const char *listen = NULL, *thr = getenv("FERRY_XFER_THREADS");
	char host[256];
	ferr_t err = {0};
	int c;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'l':
			listen = optarg;
			break;
		case 't':
			o.tls_dir = optarg;
			break;
		case 'n':
			o.name = optarg;
			break;
		case 'j':
			o.json = true;
			break;
		case 'm':
			o.max_conns = atoi(optarg);
			break;
		case 'T':
			o.timeout_ms = atoi(optarg) * 1000;
			break;
		case 'k':
			o.keep_incoming_h = atoi(optarg);
			break;
		case 'c':
			o.config = optarg;
			break;
		case 'h':
			usage(stdout);
			return FX_OK;
		default:
			usage(stderr);
			return FX_USAGE;
		}
	}
	if (!listen || !o.tls_dir || !o.name || optind != argc || o.max_conns < 1 ||
	    o.max_conns > 1024 || o.timeout_ms < 1000 || o.keep_incoming_h < 0) {
		usage(stderr);
		return FX_USAGE;
	}
	if (thr && atoi(thr) == 1)
		o.threads = 1; /* benchmarks: receive without the writer thread */
	if (parse_hostport(listen, host, sizeof(host), &o.port, &err) < 0)
		return cmd_report("serve", &err);
	o.host = host;
	if (serve_run(&o, &err) < 0)
		return cmd_report("serve", &err);
	return FX_OK;
}
