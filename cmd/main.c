/* ferry: entry point. Parses the global options and dispatches. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "lib/log.h"
#include "lib/version.h"

static const struct cmd_desc commands[] = {
    {"check", cmd_check, "report whether this host can dump, restore and migrate"},
    {"run", cmd_run, "start a container (or with --vm a VM) tenant"},
    {"image", cmd_image, "import, list and remove root file system images"},
    {"ps", cmd_ps, "list tenants"},
    {"kill", cmd_kill, "stop a tenant"},
    {"rm", cmd_rm, "remove a stopped tenant from the registry"},
    {"logs", cmd_logs, "print a tenant's console (a VM's serial port)"},
    {"dump", cmd_dump, "stage 1: freeze a tenant and write its images"},
    {"restore", cmd_restore, "stage 3: verify an image set and resume the tenant"},
    {"cert", cmd_cert, "create a CA and issue host certificates"},
    {"serve", cmd_serve, "host agent: receive image sets and restore tenants"},
    {"send", cmd_send, "stage 2: stream an image set to a peer"},
    {"migrate", cmd_migrate, "live-migrate a tenant to a peer host"},
    {"evacuate", cmd_evacuate, "migrate every tenant of this host to a peer"},
    {"snapshot", cmd_snapshot, "encrypted, deduplicated snapshots: create, verify, roll back"},
    {"inspect", cmd_inspect, "what an image set or a snapshot holds (processes, files, memory)"},
    {"criu-hook", cmd_criu_hook, "internal: CRIU's action script during a post-copy migrate"},
};

static void usage(FILE *f)
{
	fprintf(f, "usage: ferry [--state-dir DIR] [--criu PATH] [-v] COMMAND [ARGS...]\n\n"
		   "Move running tenants between Linux hosts and snapshot them.\n\n"
		   "Commands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "\nGlobal options:\n"
		   "  --state-dir DIR  tenant registry and received sets (env FERRY_STATE_DIR,\n"
		   "                   default /var/lib/ferry)\n"
		   "  --criu PATH      CRIU binary (env FERRY_CRIU; default: the one `make deps`\n"
		   "                   recorded, then `criu` on PATH)\n"
		   "  -v, --verbose    more logging (repeat for debug)\n"
		   "  --version        print the version\n\n"
		   "Run 'ferry COMMAND --help' for a command's options.\n"
		   "Exit codes: 0 ok, 1 failure, 2 usage, 3 not found, 4 conflict, 5 integrity,\n"
		   "            6 peer/network, 7 host not ready, 8 disk full.\n");
}

int cmd_report(const char *cmd, const ferr_t *err)
{
	fprintf(stderr, "ferry %s: %s\n", cmd, err->msg[0] ? err->msg : "failed");
	return err->code ? err->code : FX_FAIL;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"state-dir", required_argument, NULL, 's'},
	    {"criu", required_argument, NULL, 'c'},
	    {"verbose", no_argument, NULL, 'v'},
	    {"version", no_argument, NULL, 'V'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct global_opts g = {0};
	int c;

	g.state_dir = getenv("FERRY_STATE_DIR");
	/* stop at the first non-option: the subcommand */
	while ((c = getopt_long(argc, argv, "+vh", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			g.state_dir = optarg;
			break;
		case 'c':
			g.criu = optarg;
			break;
		case 'v':
			g.verbose++;
			break;
		case 'V':
			printf("ferry %s\n", FERRY_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return FX_USAGE;
		}
	}
	if (!g.state_dir || !*g.state_dir)
		g.state_dir = "/var/lib/ferry";
	if (getenv("FERRY_DEBUG"))
		g.verbose = 2;
	log_set_level(g.verbose >= 2 ? LOG_DEBUG : g.verbose == 1 ? LOG_INFO : LOG_WARN);
	signal(SIGPIPE, SIG_IGN);

	if (optind >= argc) {
		usage(stderr);
		return FX_USAGE;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (!strcmp(argv[optind], commands[i].name)) {
			int sub_argc = argc - optind;
			char **sub_argv = argv + optind;

			optind = 0; /* full getopt re-initialisation for the subcommand */
			return commands[i].fn(sub_argc, sub_argv, &g);
		}
	}
	fprintf(stderr, "ferry: unknown command '%s' (see 'ferry --help')\n", argv[optind]);
	return FX_USAGE;
}
