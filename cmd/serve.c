/* ferry serve: the host agent (transport/serve.h). */
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "cmd/opts.h"
#include "agent/serve.h"
#include "lib/util.h"

struct serve_args {
	struct serve_opts o;
	const char *listen;
};

static const struct opt serve_opts[] = {
    {.name = "listen",
     .type = OPT_STR,
     .off = offsetof(struct serve_args, listen),
     .arg = "ADDR:PORT",
     .flags = OPT_REQUIRED,
     .help = "address to listen on (0.0.0.0:PORT for all)"},
    OPTS_TLS(struct serve_args, o),
    {.name = "json",
     .type = OPT_FLAG,
     .off = offsetof(struct serve_args, o.json),
     .help = "one JSON object per line instead of one log line per event"},
    {.name = "max-conns",
     .type = OPT_INT,
     .off = offsetof(struct serve_args, o.max_conns),
     .arg = "N",
     .min = 1,
     .max = 1024,
     .flags = OPT_SHOW_RANGE | OPT_SHOW_DEFAULT,
     .help = "concurrent requests (docs/protocol.md, \"Capacity and deadlines\")"},
    {.name = "timeout",
     .type = OPT_INT,
     .off = offsetof(struct serve_args, o.timeout_ms),
     .arg = "SECONDS",
     .min = 1,
     .max = INT_MAX / 1000,
     .scale = 1000,
     .flags = OPT_SHOW_DEFAULT,
     .help = "drop a connection silent this long"},
    {.name = "keep-incoming",
     .type = OPT_INT,
     .off = offsetof(struct serve_args, o.keep_incoming_h),
     .arg = "HOURS",
     .min = 0,
     .max = INT_MAX,
     .flags = OPT_SHOW_DEFAULT,
     .help = "at start, remove incoming sets untouched this long"},
    {.name = "config",
     .type = OPT_STR,
     .off = offsetof(struct serve_args, o.config),
     .arg = "FILE",
     .help = "which peers may make which requests, and the tenant kinds, root "
	     "directories and subnets peers may send (docs/security.md; default: every "
	     "peer the CA signed; containers and VMs, roots under STATE/roots and "
	     "/srv/ferry, the interfaces' subnets); reloaded when it changes or on SIGHUP "
	     "(DIR/crl.pem and DIR/NAME.pem too, when they change)"},
    {0},
};

static const struct cmd_spec serve_spec = {
    .name = "serve",
    .about = "Host agent: accepts TLS 1.3 connections from hosts whose certificates are\n"
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
	     "(--json: one JSON object per line).\n",
    .opts = serve_opts,
};

int cmd_serve(int argc, char **argv, const struct global_opts *g)
{
	struct serve_args a = {.o = {
				   .state_dir = g->state_dir,
				   .max_conns = 8,
				   .timeout_ms = 60000,
				   .keep_incoming_h = 24,
				   .threads = 2,
			       }};
	const char *thr = getenv("FERRY_XFER_THREADS");
	char host[256];
	ferr_t err = {0};
	int pos, rc;

	if ((rc = opts_parse(&serve_spec, &a, argc, argv, &pos)) != OPTS_RUN)
		return rc;
	if (thr && atoi(thr) == 1)
		a.o.threads = 1; /* benchmarks: receive without the writer thread */
	if (parse_hostport(a.listen, host, sizeof(host), &a.o.port, &err) < 0)
		return cmd_report("serve", &err);
	a.o.host = host;
	if (serve_run(&a.o, &err) < 0)
		return cmd_report("serve", &err);
	return FX_OK;
}
