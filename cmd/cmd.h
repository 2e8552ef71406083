/* Subcommands: one file per command in cmd/, each an option table (parsed
 * and turned into --help by cmd/opts.h) and a call into the library. The
 * command line only parses and reports. */
#ifndef FERRY_CMD_H
#define FERRY_CMD_H

#include <stdbool.h>

#include "lib/err.h"

/* Options shared by every command (parsed by main before the subcommand). */
struct global_opts {
	const char *state_dir; /* --state-dir, FERRY_STATE_DIR, /var/lib/ferry */
	const char *criu;      /* --criu PATH or NULL: see criu_locate() */
	int verbose;	       /* -v count */
};

typedef int (*cmd_fn)(int argc, char **argv, const struct global_opts *g);

struct cmd_desc {
	const char *name;
	cmd_fn fn;
	const char *summary;
};

/* Report err on stderr as "ferry CMD: message" and return its exit code. */
int cmd_report(const char *cmd, const ferr_t *err);

struct jw;
struct tenant_iso;
/* A tenant's isolation settings as JSON members (run --json, ps --json). */
void cmd_iso_json(struct jw *w, const struct tenant_iso *iso);

int cmd_check(int argc, char **argv, const struct global_opts *g);
int cmd_image(int argc, char **argv, const struct global_opts *g);
int cmd_run(int argc, char **argv, const struct global_opts *g);
int cmd_ps(int argc, char **argv, const struct global_opts *g);
int cmd_kill(int argc, char **argv, const struct global_opts *g);
int cmd_rm(int argc, char **argv, const struct global_opts *g);
int cmd_logs(int argc, char **argv, const struct global_opts *g);
int cmd_dump(int argc, char **argv, const struct global_opts *g);
int cmd_restore(int argc, char **argv, const struct global_opts *g);
int cmd_cert(int argc, char **argv, const struct global_opts *g);
int cmd_serve(int argc, char **argv, const struct global_opts *g);
int cmd_send(int argc, char **argv, const struct global_opts *g);
int cmd_migrate(int argc, char **argv, const struct global_opts *g);
int cmd_evacuate(int argc, char **argv, const struct global_opts *g);
int cmd_criu_hook(int argc, char **argv, const struct global_opts *g);
int cmd_snapshot(int argc, char **argv, const struct global_opts *g);
int cmd_inspect(int argc, char **argv, const struct global_opts *g);

#endif
