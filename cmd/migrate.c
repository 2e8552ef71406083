/* ferry migrate: live-migrate a tenant to a peer's `ferry serve` (migrate/migrate.h). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "criu/locate.h"
#include "lib/json.h"
#include "migrate/migrate.h"
#include "cmd/migrate_report.h"
#include "migrate/precopy.h"
#include "lib/util.h"

static void usage(FILE *f)
{
	fprintf(
	    f, "usage: ferry migrate NAME --to HOST:PORT --tls DIR --name NAME [--peer NAME]\n"
	       "                     [--mode auto|stop-copy|pre-copy|post-copy] [--tune-host]\n"
	       "                     [--precopy-rounds N] [--precopy-shrink PCT]\n"
	       "                     [--source-agent HOST:PORT]\n"
	       "                     [--timeout SECONDS] [--no-compress] [--json]\n\n"
	       "Move the running tenant NAME to the host whose `ferry serve` listens on\n"
	       "HOST:PORT. Its memory streams from CRIU through the TLS session as it is\n"
	       "dumped; the destination restores it and holds it stopped; only then is the\n"
	       "copy here given up and the one there resumed. Until that point any failure\n"
	       "(restore error, lost connection, timeout) resumes the tenant here.\n"
	       "Its address and TCP connections move with it.\n\n"
	       "  --to HOST:PORT        the destination agent\n"
	       "  --tls DIR --name NAME CA DIR/ca.pem, identity DIR/NAME.pem + DIR/NAME.key\n"
	       "  --peer NAME           the name in the destination's certificate (default: HOST)\n"
	       "  --source-agent HOST:PORT  this host's agent, which the destination asks when\n"
	       "                        it lost us after restoring (default: the `ferry serve`\n"
	       "                        of this state directory, at our session's address)\n"
	       "  --mode MODE           auto (default: the best safe mode: pre-copy where this\n"
	       "                        host tracks dirty memory (soft-dirty, see `ferry check`),\n"
	       "                        else stop-copy), stop-copy, pre-copy (the tenant runs\n"
	       "                        while its memory is sent in rounds, then a short final\n"
	       "                        dump; needs soft-dirty), post-copy (opt-in: the\n"
	       "                        tenant runs on the destination before its memory\n"
	       "                        arrived; IF THIS HOST DIES BEFORE EVERY PAGE ARRIVED,\n"
	       "                        THE TENANT IS LOST)\n"
	       "  --tune-host           post-copy: set the pipe sysctls it needs on this host\n"
	       "  --precopy-rounds N    pre-copy: at most N rounds before the final dump\n"
	       "                        (1..16, default 5)\n"
	       "  --precopy-shrink PCT  pre-copy: another round only while the last one sent\n"
	       "                        at most PCT %% of the one before (1..100, default 80);\n"
	       "                        a round of 1 MiB or less also ends the rounds\n"
	       "  --timeout SECONDS     one step on the session (restore included) may take this\n"
	       "                        long (default 60)\n"
	       "  --no-compress         no LZ4 on the page stream\n"
	       "  --json                print the report as JSON\n\n"
	       "Exit codes: 0 moved, 1 failed (see the message: the tenant runs here again),\n"
	       "            2 bad command line, 3 no such tenant here, 4 the tenant is not\n"
	       "            running or the destination cannot take it (name taken, address\n"
	       "            not in its subnets, root file system missing), 6 network/peer\n"
	       "            failure, 7 this host lacks what the mode needs or cannot move the\n"
	       "            tenant's address (docs/exit-codes.md).\n");
}

/* A whole number in [lo, hi]. */
static int parse_range(const char *s, unsigned lo, unsigned hi, unsigned *out)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);

	if (!*s || *end || v < lo || v > hi)
		return -1;
	*out = (unsigned)v;
	return 0;
}

static int usage_bad(const char *opt, const char *val)
{
	fprintf(stderr, "ferry migrate: %s %s: out of range (see --help)\n", opt, val);
	return FX_USAGE;
}

int cmd_migrate(int argc, char **argv, const struct global_opts *g)
{
	static const struct option opts[] = {
	    {"to", required_argument, NULL, 'T'},
	    {"tls", required_argument, NULL, 't'},
	    {"name", required_argument, NULL, 'n'},
	    {"peer", required_argument, NULL, 'p'},
	    {"source-agent", required_argument, NULL, 'A'},
	    {"mode", required_argument, NULL, 'm'},
	    {"tune-host", no_argument, NULL, 'u'},
	    {"precopy-rounds", required_argument, NULL, 'R'},
	    {"precopy-shrink", required_argument, NULL, 'S'},
	    {"timeout", required_argument, NULL, 'o'},
	    {"no-compress", no_argument, NULL, 'z'},
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct migrate_opts o = {.state_dir = g->state_dir,
				 .compress = true,
				 .timeout_ms = 60000,
				 .retry_for_s = 30,
				 .progress = migrate_progress_tty};
	struct migrate_result r;
	const char *to = NULL;
	char host[256], criu[4096];
	bool json = false;
	ferr_t err = {0};
	int c, rc;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'T':
			to = optarg;
			break;
		case 't':
			o.tls_dir = optarg;
			break;
		case 'n':
			o.name = optarg;
			break;
		case 'p':
			o.peer = optarg;
			break;
		case 'A': {
			char h[256];
			uint16_t port;
			if (parse_hostport(optarg, h, sizeof(h), &port, NULL) < 0) {
				fprintf(stderr,
					"ferry migrate: --source-agent %s: want HOST:PORT (see "
					"--help)\n",
					optarg);
				return FX_USAGE;
			}
			o.source_agent = optarg;
			break;
		}
		case 'm':
			if (mig_mode_parse(optarg, &o.mode, &err) < 0)
				return cmd_report("migrate", &err);
			break;
		case 'u':
			o.tune_host = true;
			break;
		case 'R':
			if (parse_range(optarg, 1, PRECOPY_ROUNDS_MAX, &o.precopy_rounds) < 0)
				return usage_bad("--precopy-rounds", optarg);
			break;
		case 'S':
			if (parse_range(optarg, 1, 100, &o.precopy_shrink_pct) < 0)
				return usage_bad("--precopy-shrink", optarg);
			break;
		case 'o':
			o.timeout_ms = atoi(optarg) * 1000;
			break;
		case 'z':
			o.compress = false;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			usage(stdout);
			return FX_OK;
		default:
			usage(stderr);
			return FX_USAGE;
		}
	}
	if (optind + 1 != argc || !to || !o.tls_dir || !o.name || o.timeout_ms < 1000) {
		usage(stderr);
		return FX_USAGE;
	}
	o.tenant = argv[optind];
	if (parse_hostport(to, host, sizeof(host), &o.port, &err) < 0 ||
	    criu_locate(g->criu, criu, sizeof(criu), NULL, &err) < 0)
		return cmd_report("migrate", &err);
	o.host = host;
	o.criu_path = criu;
	rc = migrate_tenant(&o, &r, &err);
	if (json) {
		struct jw w;
		jw_init(&w, stdout);
		migrate_report_json(&w, NULL, &r, rc, &err);
		jw_finish(&w);
	} else if (rc == 0) {
		migrate_report_text(&r);
	}
	if (rc < 0)
		return cmd_report("migrate", &err);
	return FX_OK;
}
