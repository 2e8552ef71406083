/* ferry kill: end a tenant and mark it gone. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "tenant/kind.h"
#include "tenant/registry.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: ferry kill NAME [--signal SIG] [--timeout SECONDS]\n\n"
		   "End a tenant, every process of it: signal it (default KILL; a container's\n"
		   "init, which takes its whole PID namespace along; every process of a process\n"
		   "tree), wait until it is gone (default 10 s), remove the host side of its\n"
		   "network and mark it gone. 'ferry rm NAME' then removes the record.\n"
		   "An init ignores signals it has no handler for: TERM works only when the\n"
		   "tenant's init handles it.\n");
}

static int parse_signal(const char *s)
{
	static const struct {
		const char *name;
		int sig;
	} sigs[] = {{"HUP", SIGHUP},   {"INT", SIGINT},	  {"QUIT", SIGQUIT}, {"KILL", SIGKILL},
		    {"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"TERM", SIGTERM}};
	char *end;
	long n = strtol(s, &end, 10);

	if (*s && !*end)
		return (n > 0 && n < NSIG) ? (int)n : -1;
	if (!strncasecmp(s, "SIG", 3))
		s += 3;
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		if (!strcasecmp(s, sigs[i].name))
			return sigs[i].sig;
	return -1;
}

static int do_kill(const struct global_opts *g, const char *name, int sig, int timeout_ms,
		   ferr_t *err)
{
	struct tenant_rec rec;
	int lock, r = -1;

	if ((lock = registry_lock(g->state_dir, name, err)) < 0)
		return -1;
	if (registry_load(g->state_dir, name, &rec, err) < 0)
		goto out_unlock;
	if (registry_refresh(g->state_dir, &rec, err) < 0)
		goto out;
	if (rec.state == TS_GONE) {
		ferr_set(err, FX_CONFLICT,
			 "tenant '%s' is not running (state gone): remove it with 'ferry rm %s'",
			 name, name);
		goto out;
	}
	r = tenant_kill(g->state_dir, &rec, sig, timeout_ms, err);
out:
	tenant_rec_free(&rec);
out_unlock:
	close(lock);
	return r;
}

int cmd_kill(int argc, char **argv, const struct global_opts *g)
{
	static const struct option opts[] = {
	    {"signal", required_argument, NULL, 's'},
	    {"timeout", required_argument, NULL, 't'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int c, sig = SIGKILL, timeout_ms = 10000;
	ferr_t err = {0};

	while ((c = getopt_long(argc, argv, "s:h", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			if ((sig = parse_signal(optarg)) < 0) {
				fprintf(stderr, "ferry kill: unknown signal '%s'\n", optarg);
				return FX_USAGE;
			}
			break;
		case 't':
			timeout_ms = atoi(optarg) * 1000;
			if (timeout_ms <= 0) {
				fprintf(stderr, "ferry kill: bad --timeout '%s'\n", optarg);
				return FX_USAGE;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return FX_USAGE;
		}
	}
	if (argc - optind != 1) {
		usage(stderr);
		return FX_USAGE;
	}
	if (do_kill(g, argv[optind], sig, timeout_ms, &err) < 0)
		return cmd_report("kill", &err);
	return 0;
}
