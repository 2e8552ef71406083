/* Command-line parsing of `ferry dump` and `ferry restore`: every bad
 * combination is a usage error (exit code 2) before anything happens. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cmd/cmd.h"
#include "unit.h"

/* main.c is not linked into unit tests */
int cmd_report(const char *cmd, const ferr_t *err)
{
	fprintf(stderr, "ferry %s: %s\n", cmd, err->msg);
	return err->code ? err->code : FX_FAIL;
}

static int run(cmd_fn fn, int argc, char **argv)
{
	struct global_opts g = {.state_dir = "/nonexistent/ferry-unit-state"};

	optind = 0; /* full getopt re-initialisation, as main() does */
	return fn(argc, argv, &g);
}

#define ARGV(...)	 ((char *[]){__VA_ARGS__, NULL})
#define NARGS(...)	 ((int)(sizeof((char *[]){__VA_ARGS__}) / sizeof(char *)))
#define RUN_CMD(fn, ...) run(fn, NARGS(__VA_ARGS__), ARGV(__VA_ARGS__))

static void test_dump_usage(void)
{
	CHECK(RUN_CMD(cmd_dump, "dump") == FX_USAGE);
	CHECK(RUN_CMD(cmd_dump, "dump", "t1") == FX_USAGE);	      /* no -D */
	CHECK(RUN_CMD(cmd_dump, "dump", "-D", "/tmp/x") == FX_USAGE); /* no tenant */
	CHECK(RUN_CMD(cmd_dump, "dump", "t1", "--pid", "5", "-D", "/tmp/x") == FX_USAGE);
	CHECK(RUN_CMD(cmd_dump, "dump", "--pid", "abc", "-D", "/tmp/x") == FX_USAGE);
	CHECK(RUN_CMD(cmd_dump, "dump", "--pid", "-3", "-D", "/tmp/x") == FX_USAGE);
	CHECK(RUN_CMD(cmd_dump, "dump", "t1", "t2", "-D", "/tmp/x") == FX_USAGE);
	CHECK(RUN_CMD(cmd_dump, "dump", "--bogus", "t1", "-D", "/tmp/x") == FX_USAGE);
	CHECK(RUN_CMD(cmd_dump, "dump", "--help") == FX_OK);
}

static void test_restore_usage(void)
{
	CHECK(RUN_CMD(cmd_restore, "restore") == FX_USAGE);
	CHECK(RUN_CMD(cmd_restore, "restore", "extra", "-D", "/tmp/x") == FX_USAGE);
	CHECK(RUN_CMD(cmd_restore, "restore", "--bogus", "-D", "/tmp/x") == FX_USAGE);
	CHECK(RUN_CMD(cmd_restore, "restore", "-h") == FX_OK);
	/* well-formed: fails later, on the missing set, not as usage */
	CHECK(RUN_CMD(cmd_restore, "restore", "-D", "/nonexistent/set", "--verify-only") ==
	      FX_NOTFOUND);
}

int main(void)
{
	RUN(test_dump_usage);
	RUN(test_restore_usage);
	UNIT_DONE();
}
