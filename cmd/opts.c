/* The subcommands' option parser and help (see opts.h). */
#include "cmd/opts.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"

#define OPTS_MAX   32 /* options of one command and --help, at most */
#define LINE_WIDTH 79
#define HELP_COL   24  /* where option help starts (later for long option names) */
#define VAL_BASE   256 /* getopt_long value of option i: VAL_BASE + i */

/* The field an option writes, in the options struct at base. */
#define FIELD(base, o, type)  ((type *)((char *)(base) + (o)->off))
#define CFIELD(base, o, type) ((const type *)((const char *)(base) + (o)->off))

static size_t count(const struct cmd_spec *s)
{
	size_t n = 0;

	while (s->opts && s->opts[n].name)
		n++;
	return n;
}

/* Print text word by word from column col, wrapping at LINE_WIDTH to indent;
 * returns the column reached. A '\n' in text starts a new line. */
static int wrap(FILE *f, const char *text, int col, int indent)
{
	while (*text) {
		if (*text == '\n') {
			fprintf(f, "\n%*s", indent, "");
			col = indent;
			text++;
			continue;
		}
		size_t sp = strspn(text, " ");
		size_t w = strcspn(text + sp, " \n");
		if (col > indent && col + (int)(sp + w) > LINE_WIDTH) {
			fprintf(f, "\n%*s", indent, "");
			col = indent;
		} else if (col > indent) {
			fprintf(f, "%.*s", (int)sp, text);
			col += (int)sp;
		}
		fprintf(f, "%.*s", (int)w, text + sp);
		col += (int)w;
		text += sp + w;
	}
	return col;
}

/* "--name ARG", "[--name ARG]" or "--name" for the synopsis. */
static void synopsis_item(const struct opt *o, char *buf, size_t len)
{
	bool req = o->flags & OPT_REQUIRED;

	snprintf(buf, len, "%s--%s%s%s%s", req ? "" : "[", o->name, o->arg ? " " : "",
		 o->arg ? o->arg : "", req ? "" : "]");
}

static void synopsis(const struct cmd_spec *s, FILE *f)
{
	char item[128];
	int indent = fprintf(f, "usage: ferry %s ", s->name);
	int col = indent;

	if (s->args)
		col = wrap(f, s->args, col, indent);
	for (const struct opt *o = s->opts; o && o->name; o++) {
		synopsis_item(o, item, sizeof(item));
		if (col > indent && col + 1 + (int)strlen(item) > LINE_WIDTH) {
			fprintf(f, "\n%*s", indent, "");
			col = indent;
		} else if (col > indent) {
			col += fprintf(f, " ");
		}
		col += fprintf(f, "%s", item);
	}
	if (s->tail) {
		fputc(' ', f);
		wrap(f, s->tail, col + 1, indent);
	}
	fputc('\n', f);
}

/* " (1..16, default 5)" from the table and the field's value before parsing. */
static void help_suffix(const struct opt *o, const void *base, char *buf, size_t len)
{
	char range[64] = "", def[256] = "";
	int scale = o->scale ? o->scale : 1;

	buf[0] = '\0';
	if (o->flags & OPT_SHOW_RANGE)
		snprintf(range, sizeof(range), "%ld..%ld", o->min, o->max);
	if (o->flags & OPT_SHOW_DEFAULT) {
		if (o->type == OPT_INT)
			snprintf(def, sizeof(def), "default %d", *CFIELD(base, o, int) / scale);
		else if (o->type == OPT_UINT)
			snprintf(def, sizeof(def), "default %u", *CFIELD(base, o, unsigned));
		else if (o->type == OPT_STR && *CFIELD(base, o, char *const))
			snprintf(def, sizeof(def), "default %s", *CFIELD(base, o, char *const));
	}
	if (range[0] || def[0])
		snprintf(buf, len, " (%s%s%s)", range, range[0] && def[0] ? ", " : "", def);
}

static void option_line(FILE *f, char short_name, const char *name, const char *arg,
			const char *help, const char *suffix)
{
	char left[128];
	int n;

	if (short_name)
		n = snprintf(left, sizeof(left), "  -%c, --%s%s%s", short_name, name,
			     arg ? " " : "", arg ? arg : "");
	else
		n = snprintf(left, sizeof(left), "  --%s%s%s", name, arg ? " " : "",
			     arg ? arg : "");
	fputs(left, f);
	if (n + 2 > HELP_COL) {
		fprintf(f, "\n%*s", HELP_COL, "");
	} else {
		fprintf(f, "%*s", HELP_COL - n, "");
	}
	int col = wrap(f, help, HELP_COL, HELP_COL);
	wrap(f, suffix, col, HELP_COL);
	fputc('\n', f);
}

void opts_help(const struct cmd_spec *s, const void *base, FILE *f)
{
	char suffix[320];

	synopsis(s, f);
	if (s->about)
		fprintf(f, "\n%s", s->about);
	fprintf(f, "\n");
	for (const struct opt *o = s->opts; o && o->name; o++) {
		help_suffix(o, base, suffix, sizeof(suffix));
		option_line(f, o->short_name, o->name, o->arg, o->help, suffix);
	}
	option_line(f, 'h', "help", NULL, "print this help", "");
	if (s->notes)
		fprintf(f, "\n%s", s->notes);
}

int opts_usage_error(const struct cmd_spec *s, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "ferry %s: ", s->name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	synopsis(s, stderr);
	fprintf(stderr, "Run 'ferry %s --help' for the options.\n", s->name);
	return FX_USAGE;
}

/* A whole number in [o->min, o->max]. */
static int parse_number(const struct opt *o, const char *arg, long *v)
{
	char *end;

	errno = 0;
	*v = strtol(arg, &end, 10);
	if (!*arg || *end || errno || *v < o->min || *v > o->max)
		return -1;
	return 0;
}

/* Apply one option with its argument; OPTS_RUN or an exit code. */
static int apply(const struct cmd_spec *s, void *base, const struct opt *o, const char *arg)
{
	ferr_t err = {0};
	long v;

	switch (o->type) {
	case OPT_FLAG:
		*FIELD(base, o, bool) = true;
		break;
	case OPT_CLEAR:
		*FIELD(base, o, bool) = false;
		break;
	case OPT_STR:
		*FIELD(base, o, const char *) = arg;
		break;
	case OPT_INT:
	case OPT_UINT:
		if (parse_number(o, arg, &v) < 0)
			return opts_usage_error(s, "--%s %s: want a whole number in %ld..%ld",
						o->name, arg, o->min, o->max);
		if (o->type == OPT_INT)
			*FIELD(base, o, int) = (int)v * (o->scale ? o->scale : 1);
		else
			*FIELD(base, o, unsigned) = (unsigned)v;
		break;
	case OPT_FN:
		if (o->parse(arg, FIELD(base, o, char), &err) < 0) {
			fprintf(stderr, "ferry %s: --%s: %s (see --help)\n", s->name, o->name,
				err.msg[0] ? err.msg : "bad value");
			return err.code ? err.code : FX_USAGE;
		}
		break;
	}
	return OPTS_RUN;
}

/* getopt_long's tables from the command's. */
static void build(const struct cmd_spec *s, size_t n, struct option *lo, char *so)
{
	char *p = so;

	*p++ = ':'; /* report a missing argument as ':', and print nothing */
	for (size_t i = 0; i < n; i++) {
		const struct opt *o = &s->opts[i];
		bool has_arg = o->type != OPT_FLAG && o->type != OPT_CLEAR;
		lo[i] = (struct option){o->name, has_arg ? required_argument : no_argument, NULL,
					VAL_BASE + (int)i};
		if (o->short_name) {
			*p++ = o->short_name;
			if (has_arg)
				*p++ = ':';
		}
	}
	lo[n] = (struct option){"help", no_argument, NULL, 'h'};
	lo[n + 1] = (struct option){NULL, 0, NULL, 0};
	*p++ = 'h';
	*p = '\0';
}

/* The table index of getopt's answer c, or -1. */
static int index_of(const struct cmd_spec *s, size_t n, int c)
{
	if (c >= VAL_BASE && c < VAL_BASE + (int)n)
		return c - VAL_BASE;
	for (size_t i = 0; i < n; i++)
		if (c > 0 && s->opts[i].short_name == c)
			return (int)i;
	return -1;
}

/* What is missing once every option was read; OPTS_RUN or FX_USAGE. */
static int check_done(const struct cmd_spec *s, const void *base, size_t n, int argc, char **argv,
		      int first)
{
	int nargs = argc - first;

	for (size_t i = 0; i < n; i++) {
		const struct opt *o = &s->opts[i];
		if ((o->flags & OPT_REQUIRED) && o->type == OPT_STR &&
		    !*CFIELD(base, o, char *const))
			return opts_usage_error(s, "--%s %s is needed", o->name, o->arg);
	}
	if (nargs < s->min_args)
		return opts_usage_error(s, "missing arguments: want %s%s%s", s->args ? s->args : "",
					s->args && s->tail ? " " : "", s->tail ? s->tail : "");
	if (s->max_args >= 0 && nargs > s->max_args)
		return opts_usage_error(s, "unexpected argument '%s'", argv[first + s->max_args]);
	return OPTS_RUN;
}

int opts_parse(const struct cmd_spec *s, void *base, int argc, char **argv, int *pos)
{
	struct option lo[OPTS_MAX + 1];
	char so[2 * OPTS_MAX + 3];
	size_t n = count(s);
	int c, rc;

	if (n >= OPTS_MAX)
		return opts_usage_error(s, "too many options in this command's table");
	build(s, n, lo, so);
	optind = 0; /* full re-initialisation: main parsed the global options */
	opterr = 0;
	while ((c = getopt_long(argc, argv, so, lo, NULL)) != -1) {
		int i = index_of(s, n, c);
		if (c == 'h' && i < 0) {
			opts_help(s, base, stdout);
			return FX_OK;
		}
		if (c == ':') {
			i = index_of(s, n, optopt);
			return opts_usage_error(s, "--%s needs an argument (%s)",
						i >= 0 ? s->opts[i].name : "option",
						i >= 0 && s->opts[i].arg ? s->opts[i].arg : "?");
		}
		if (c == '?' || i < 0)
			return opts_usage_error(s, "unknown option '%s'", argv[optind - 1]);
		if ((rc = apply(s, base, &s->opts[i], optarg)) != OPTS_RUN)
			return rc;
	}
	*pos = optind;
	return check_done(s, base, n, argc, argv, optind);
}

int opt_hostport(const char *arg, void *field, ferr_t *err)
{
	char host[256];
	uint16_t port;

	if (parse_hostport(arg, host, sizeof(host), &port, err) < 0)
		return -1;
	*(const char **)field = arg;
	return 0;
}
