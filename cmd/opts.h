/* One option parser for every subcommand. A command describes its options
 * once, in a static table (struct opt) whose entries name a field of the
 * command's own options struct by offset; opts_parse() parses argv from that
 * table (getopt_long underneath) into the struct, and opts_help() prints the
 * help from the same table and the struct's defaults, synopsis included, so
 * what --help says and what is parsed cannot drift apart. Values are checked
 * while parsing (ranges, custom parsers): a bad one is a usage error (exit
 * code 2) naming the option. */
#ifndef FERRY_CMD_OPTS_H
#define FERRY_CMD_OPTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "lib/err.h"

enum opt_type {
	OPT_FLAG,  /* no argument: the bool field = true */
	OPT_CLEAR, /* no argument: the bool field = false (--no-compress) */
	OPT_STR,   /* the const char * field = ARG */
	OPT_INT,   /* the int field = ARG * scale; ARG a whole number in [min, max] */
	OPT_UINT,  /* the unsigned field = ARG; ARG a whole number in [min, max] */
	OPT_FN,	   /* parse(ARG, &field, err) */
};

enum {
	OPT_REQUIRED = 1 << 0,	   /* OPT_STR the command needs (no brackets in the synopsis) */
	OPT_SHOW_DEFAULT = 1 << 1, /* help ends with "(default V)": the field before parsing */
	OPT_SHOW_RANGE = 1 << 2,   /* help ends with "(MIN..MAX)" */
};

struct opt {
	const char *name; /* long name without "--" */
	char short_name;  /* 0, or the one-letter form ('D' for -D) */
	enum opt_type type;
	size_t off;	  /* offsetof(the command's options struct, the field) */
	const char *arg;  /* what the argument is, in the help ("HOST:PORT"); flags: NULL */
	const char *help; /* what the option does; wrapped when printed */
	unsigned flags;	  /* OPT_REQUIRED, OPT_SHOW_DEFAULT, OPT_SHOW_RANGE */
	long min, max;	  /* OPT_INT, OPT_UINT: accepted range of ARG */
	int scale;	  /* OPT_INT: stored ARG * scale (seconds -> ms); 0 means 1 */
	/* OPT_FN: store ARG's meaning in *field; -1 with err set when ARG is bad */
	int (*parse)(const char *arg, void *field, ferr_t *err);
};

struct cmd_spec {
	const char *name;	/* "migrate", or "cert" */
	const char *args;	/* positional arguments, before the options in the synopsis */
	const char *tail;	/* after the options in the synopsis ("-- CMD [ARG...]") */
	const char *about;	/* between the synopsis and the options, printed as is */
	const char *notes;	/* after the options (exit codes...), printed as is */
	int min_args;		/* positional arguments accepted: min_args..max_args */
	int max_args;		/* -1: no limit (run's command) */
	const struct opt *opts; /* ends with an entry whose name is NULL */
};

/* opts_parse's answer when the command goes on. */
#define OPTS_RUN (-1)

/* Parse argv[1..argc-1] (argv[0] is the command) by s into the options
 * struct at base, which holds the defaults. GNU getopt order:
 * options and positional arguments mix until "--". Returns OPTS_RUN with
 * *pos the index of the first positional argument (they are
 * argv[*pos..argc-1]), or the exit code to end the command with: FX_OK
 * once -h/--help printed the help on stdout, FX_USAGE (or a custom
 * parser's code) after a message on stderr. */
int opts_parse(const struct cmd_spec *s, void *base, int argc, char **argv, int *pos);

/* The full help: synopsis, about, options (defaults read from base), notes. */
void opts_help(const struct cmd_spec *s, const void *base, FILE *f);

/* A usage error found after parsing (e.g. two options that exclude each
 * other): "ferry CMD: message", the synopsis, a pointer to --help on stderr.
 * Returns FX_USAGE. */
int opts_usage_error(const struct cmd_spec *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The options every command that talks to peers shares, as table entries.
 * T is the command's options struct; TLS names its member (a struct) that
 * has the fields tls_dir, name and peer; TO its const char * for --to; JSON
 * its bool for --json. */
#define OPTS_TLS(T, TLS)                                                                           \
	{.name = "tls",                                                                            \
	 .type = OPT_STR,                                                                          \
	 .off = offsetof(T, TLS.tls_dir),                                                          \
	 .arg = "DIR",                                                                             \
	 .flags = OPT_REQUIRED,                                                                    \
	 .help = "TLS directory: the CA DIR/ca.pem and this host's identity DIR/NAME.pem + "       \
		 "DIR/NAME.key (`ferry cert`)"},                                                   \
	{                                                                                          \
		.name = "name", .type = OPT_STR, .off = offsetof(T, TLS.name), .arg = "NAME",      \
		.flags = OPT_REQUIRED,                                                             \
		.help = "this host's name: its identity in the TLS directory"                      \
	}
#define OPTS_PEER(T, TO, TLS)                                                                      \
	{.name = "to",                                                                             \
	 .type = OPT_STR,                                                                          \
	 .off = offsetof(T, TO),                                                                   \
	 .arg = "HOST:PORT",                                                                       \
	 .flags = OPT_REQUIRED,                                                                    \
	 .help = "the peer host's agent (`ferry serve`)"},                                         \
	    OPTS_TLS(T, TLS),                                                                      \
	{                                                                                          \
		.name = "peer", .type = OPT_STR, .off = offsetof(T, TLS.peer), .arg = "NAME",      \
		.help = "the name in the peer's certificate (default: the HOST of --to)"           \
	}
#define OPTS_JSON(T, JSON)                                                                         \
	{                                                                                          \
		.name = "json", .type = OPT_FLAG, .off = offsetof(T, JSON),                        \
		.help = "print the result as one JSON object"                                      \
	}

/* OPT_FN parsers shared by commands. */
/* HOST:PORT (or [V6ADDR]:PORT), checked; the field is a const char * that
 * keeps ARG. */
int opt_hostport(const char *arg, void *field, ferr_t *err);

#endif
