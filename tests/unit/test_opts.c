/* The subcommands' option parser (cmd/opts.c): values land in the options
 * struct, ranges and required options are enforced with exit code 2,
 * positional arguments are counted, and the help printed from the same
 * table shows every option with its default and range. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/opts.h"
#include "unit.h"

struct t_args {
	struct {
		const char *tls_dir, *name, *peer;
	} tls;
	const char *to;
	bool json, compress;
	int timeout_ms;
	unsigned rounds;
	const char *mode;
};

static int parse_mode(const char *arg, void *field, ferr_t *err)
{
	if (strcmp(arg, "fast") && strcmp(arg, "slow"))
		return ferr_set(err, FX_USAGE, "unknown mode '%s'", arg);
	*(const char **)field = arg;
	return 0;
}

static const struct opt t_opts[] = {
    OPTS_PEER(struct t_args, to, tls),
    OPTS_JSON(struct t_args, json),
    {.name = "no-compress",
     .type = OPT_CLEAR,
     .off = offsetof(struct t_args, compress),
     .help = "no LZ4"},
    {.name = "timeout",
     .short_name = 't',
     .type = OPT_INT,
     .off = offsetof(struct t_args, timeout_ms),
     .arg = "SECONDS",
     .min = 1,
     .max = 3600,
     .scale = 1000,
     .flags = OPT_SHOW_DEFAULT,
     .help = "how long"},
    {.name = "rounds",
     .type = OPT_UINT,
     .off = offsetof(struct t_args, rounds),
     .arg = "N",
     .min = 1,
     .max = 16,
     .flags = OPT_SHOW_RANGE | OPT_SHOW_DEFAULT,
     .help = "at most N rounds"},
    {.name = "mode",
     .type = OPT_FN,
     .off = offsetof(struct t_args, mode),
     .arg = "MODE",
     .parse = parse_mode,
     .help = "fast or slow"},
    {0},
};

static const struct cmd_spec t_spec = {
    .name = "test",
    .args = "NAME",
    .min_args = 1,
    .max_args = 1,
    .opts = t_opts,
};

static struct t_args defaults(void)
{
	return (struct t_args){.compress = true, .timeout_ms = 60000, .rounds = 5};
}

/* Parse a NULL-terminated list of words (argv[0] is the command). */
static int parse(struct t_args *a, int *pos, char **words)
{
	int argc = 0;

	while (words[argc])
		argc++;
	*a = defaults();
	/* silence the usage messages of the failing cases */
	FILE *saved = stderr;
	stderr = fopen("/dev/null", "w");
	int rc = opts_parse(&t_spec, a, argc, words, pos);
	fclose(stderr);
	stderr = saved;
	return rc;
}

static void test_values(void)
{
	char *w[] = {"test",   "--to", "h:1",	   "x",	 "--tls",  "d",
		     "--name", "me",   "-t",	   "5",	 "--json", "--no-compress",
		     "--mode", "slow", "--rounds", "16", NULL};
	struct t_args a;
	int pos = -1;

	CHECK(parse(&a, &pos, w) == OPTS_RUN);
	CHECK(!strcmp(a.to, "h:1") && !strcmp(a.tls.tls_dir, "d") && !strcmp(a.tls.name, "me"));
	CHECK(a.tls.peer == NULL);
	CHECK(a.timeout_ms == 5000 && a.json && !a.compress && a.rounds == 16);
	CHECK(!strcmp(a.mode, "slow"));
	CHECK(pos == 15 && !strcmp(w[pos], "x")); /* permuted to the end */
}

static void test_defaults_stay(void)
{
	char *w[] = {"test", "x", "--to", "h:1", "--tls", "d", "--name", "me", NULL};
	struct t_args a;
	int pos;

	CHECK(parse(&a, &pos, w) == OPTS_RUN);
	CHECK(a.timeout_ms == 60000 && a.compress && !a.json && a.rounds == 5 && !a.mode);
}

static void test_errors(void)
{
	struct t_args a;
	int pos;
	char *missing[] = {"test", "x", "--tls", "d", "--name", "me", NULL};
	char *noarg[] = {"test", "x", "--to", "h:1", "--tls", "d", "--name", "me", "-t", NULL};
	char *range[] = {"test",   "x",	 "--to",     "h:1", "--tls", "d",
			 "--name", "me", "--rounds", "17",  NULL};
	char *notnum[] = {"test",   "x",  "--to", "h:1", "--tls", "d",
			  "--name", "me", "-t",	  "5s",	 NULL};
	char *bad[] = {"test",	 "x",  "--to",	 "h:1", "--tls", "d",
		       "--name", "me", "--mode", "odd", NULL};
	char *unknown[] = {"test", "x",	     "--to", "h:1",    "--tls",
			   "d",	   "--name", "me",   "--nope", NULL};
	char *noname[] = {"test", "--to", "h:1", "--tls", "d", "--name", "me", NULL};
	char *extra[] = {"test", "x", "y", "--to", "h:1", "--tls", "d", "--name", "me", NULL};

	CHECK(parse(&a, &pos, missing) == FX_USAGE);
	CHECK(parse(&a, &pos, noarg) == FX_USAGE);
	CHECK(parse(&a, &pos, range) == FX_USAGE);
	CHECK(parse(&a, &pos, notnum) == FX_USAGE);
	CHECK(parse(&a, &pos, bad) == FX_USAGE);
	CHECK(parse(&a, &pos, unknown) == FX_USAGE);
	CHECK(parse(&a, &pos, noname) == FX_USAGE);
	CHECK(parse(&a, &pos, extra) == FX_USAGE);
}

static void test_help(void)
{
	char *w[] = {"test", "--help", NULL};
	struct t_args a = defaults();
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	opts_help(&t_spec, &a, f);
	fclose(f);
	CHECK(strstr(text, "usage: ferry test NAME --to HOST:PORT --tls DIR --name NAME") == text);
	CHECK(strstr(text, "[--peer NAME]") && strstr(text, "[--json]"));
	CHECK(strstr(text, "  -t, --timeout SECONDS"));
	CHECK(strstr(text, "(default 60)"));
	CHECK(strstr(text, "(1..16, default 5)"));
	CHECK(strstr(text, "  -h, --help"));
	free(text);
	/* --help: printed on stdout, exit code 0 */
	FILE *saved = stdout;
	stdout = fopen("/dev/null", "w");
	int pos, rc = opts_parse(&t_spec, &a, 2, w, &pos);
	fclose(stdout);
	stdout = saved;
	CHECK(rc == FX_OK);
}

int main(void)
{
	RUN(test_values);
	RUN(test_defaults_stay);
	RUN(test_errors);
	RUN(test_help);
	UNIT_DONE();
}
