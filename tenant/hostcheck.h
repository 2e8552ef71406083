/* Host readiness: which of ferry's migration modes work on this host, and
 * why not. Every item is measured (CRIU and nft run, files read); nothing
 * is assumed from the distribution or the kernel version. Support for a
 * tenant kind is claimed only by that kind: VM tenants are "no" while this
 * build has no VM tenant kind. */
#ifndef FERRY_HOSTCHECK_H
#define FERRY_HOSTCHECK_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#include "lib/err.h"

enum hc_status { HC_OK = 0, HC_WARN = 1, HC_FAIL = 2 };

struct hc_item {
	const char *id; /* stable key: "criu", "criu-check", "dirty-tracking", ... */
	enum hc_status status;
	char detail[384]; /* one line: what was found and what it means for the user */
};

enum hc_mode { HC_STOP_COPY, HC_PRE_COPY, HC_POST_COPY, HC_VM, HC_NMODES };

struct hc_mode_state {
	const char *name; /* "stop-copy", "pre-copy", "post-copy", "vm" */
	bool available;	  /* works on this host as it is (vm: a VM kind claims it) */
	char note[160];	  /* why not, or what it needs */
};

#define HC_MAX_ITEMS 16

struct hostcheck_report {
	char kernel[128];
	char criu_path[PATH_MAX]; /* "" when not found */
	const char *criu_source;  /* see criu_locate */
	char criu_version[64];
	struct hc_item items[HC_MAX_ITEMS];
	size_t n_items;
	struct hc_mode_state modes[HC_NMODES];
	bool ready; /* CRIU dump and restore can work here (criu check passes) */
};

struct hostcheck_opts {
	const char *criu;      /* --criu value or NULL (criu_locate) */
	const char *state_dir; /* tenants to name in "other-users", or NULL */
};

/* Run every check. Never fails for a host problem (that is in the report);
 * -1 only when the checks themselves cannot run (out of memory, fork). */
int hostcheck_run(const struct hostcheck_opts *o, struct hostcheck_report *out, ferr_t *err);

const char *hc_status_str(enum hc_status s);

#endif
