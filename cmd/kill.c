/* ferry kill: end a tenant and mark it gone. */
#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "cmd/opts.h"
#include "tenant/kind.h"
#include "tenant/registry.h"

/* --signal: a number or a name (KILL, SIGKILL, kill); field is an int. */
static int parse_signal(const char *s, void *field, ferr_t *err)
{
	static const struct {
		const char *name;
		int sig;
	} sigs[] = {{"HUP", SIGHUP},   {"INT", SIGINT},	  {"QUIT", SIGQUIT}, {"KILL", SIGKILL},
		    {"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"TERM", SIGTERM}};
	char *end;
	long n = strtol(s, &end, 10);

	const char *arg = s;

	if (*s && !*end && n > 0 && n < NSIG) {
		*(int *)field = (int)n;
		return 0;
	}
	if (!strncasecmp(s, "SIG", 3))
		s += 3;
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		if (!strcasecmp(s, sigs[i].name)) {
			*(int *)field = sigs[i].sig;
			return 0;
		}
	}
	return ferr_set(err, FX_USAGE, "unknown signal '%s'", arg);
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

struct kill_args {
	int sig;
	int timeout_ms;
};

static const struct opt kill_opts[] = {
    {.name = "signal",
     .short_name = 's',
     .type = OPT_FN,
     .off = offsetof(struct kill_args, sig),
     .arg = "SIG",
     .parse = parse_signal,
     .help = "the signal, a name (KILL, TERM, HUP, INT, QUIT, USR1, USR2) or a number "
	     "(default KILL)"},
    {.name = "timeout",
     .type = OPT_INT,
     .off = offsetof(struct kill_args, timeout_ms),
     .arg = "SECONDS",
     .min = 1,
     .max = INT_MAX / 1000,
     .scale = 1000,
     .flags = OPT_SHOW_DEFAULT,
     .help = "wait this long for the tenant to be gone"},
    {0},
};

static const struct cmd_spec kill_spec = {
    .name = "kill",
    .args = "NAME",
    .min_args = 1,
    .max_args = 1,
    .about = "End a tenant, every process of it: signal it (a container's init, which takes\n"
	     "its whole PID namespace along; every process of a process tree), wait until\n"
	     "it is gone, remove the host side of its network and mark it gone.\n"
	     "'ferry rm NAME' then removes the record.\n"
	     "An init ignores signals it has no handler for: TERM works only when the\n"
	     "tenant's init handles it.\n",
    .opts = kill_opts,
};

int cmd_kill(int argc, char **argv, const struct global_opts *g)
{
	struct kill_args a = {.sig = SIGKILL, .timeout_ms = 10000};
	ferr_t err = {0};
	int pos, rc;

	if ((rc = opts_parse(&kill_spec, &a, argc, argv, &pos)) != OPTS_RUN)
		return rc;
	if (do_kill(g, argv[pos], a.sig, a.timeout_ms, &err) < 0)
		return cmd_report("kill", &err);
	return 0;
}
