/* ferry migrate: live-migrate a tenant to a peer's `ferry serve` (migrate/migrate.h). */
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "cmd/opts.h"
#include "criu/locate.h"
#include "lib/json.h"
#include "migrate/migrate.h"
#include "cmd/migrate_report.h"
#include "migrate/precopy.h"
#include "lib/util.h"

struct migrate_args {
	struct migrate_opts o;
	const char *to;
	bool json;
};

static const struct opt migrate_opts[] = {
    OPTS_PEER(struct migrate_args, to, o),
    {.name = "source-agent",
     .type = OPT_FN,
     .off = offsetof(struct migrate_args, o.source_agent),
     .arg = "HOST:PORT",
     .parse = opt_hostport,
     .help = "this host's agent, which the destination asks when it lost us after "
	     "restoring (default: the `ferry serve` of this state directory, at our "
	     "session's address)"},
    {.name = "mode",
     .type = OPT_FN,
     .off = offsetof(struct migrate_args, o.mode),
     .arg = "MODE",
     .parse = migrate_opt_mode,
     .help = "auto (default: the best safe mode: pre-copy where this host tracks dirty "
	     "memory (soft-dirty, see `ferry check`), else stop-copy), stop-copy, pre-copy "
	     "(the tenant runs while its memory is sent in rounds, then a short final dump; "
	     "needs soft-dirty), post-copy (opt-in: the tenant runs on the destination before "
	     "its memory arrived; IF THIS HOST DIES BEFORE EVERY PAGE ARRIVED, THE TENANT IS "
	     "LOST). A VM's pre-copy and post-copy are QEMU's own (its post-copy copies no "
	     "disk: --shared-storage)"},
    {.name = "tune-host",
     .type = OPT_FLAG,
     .off = offsetof(struct migrate_args, o.tune_host),
     .help = "post-copy: set the pipe sysctls it needs on this host"},
    {.name = "precopy-rounds",
     .type = OPT_UINT,
     .off = offsetof(struct migrate_args, o.precopy_rounds),
     .arg = "N",
     .min = 1,
     .max = PRECOPY_ROUNDS_MAX,
     .flags = OPT_SHOW_RANGE | OPT_SHOW_DEFAULT,
     .help = "pre-copy: at most N rounds before the final dump"},
    {.name = "precopy-shrink",
     .type = OPT_UINT,
     .off = offsetof(struct migrate_args, o.precopy_shrink_pct),
     .arg = "PCT",
     .min = 1,
     .max = 100,
     .flags = OPT_SHOW_RANGE | OPT_SHOW_DEFAULT,
     .help = "pre-copy: another round only while the last one sent at most PCT % of the "
	     "one before; a round of 1 MiB or less also ends the rounds"},
    {.name = "timeout",
     .type = OPT_INT,
     .off = offsetof(struct migrate_args, o.timeout_ms),
     .arg = "SECONDS",
     .min = 1,
     .max = INT_MAX / 1000,
     .scale = 1000,
     .flags = OPT_SHOW_DEFAULT,
     .help = "one step on the session (restore included) may take this long"},
    {.name = "max-downtime",
     .type = OPT_INT,
     .off = offsetof(struct migrate_args, o.max_downtime_ms),
     .arg = "MS",
     .min = 1,
     .max = 600000,
     .help = "VM tenants (pre-copy by QEMU): the longest stop QEMU may plan for its last "
	     "pass (default QEMU's, 300 ms)"},
    {.name = "no-compress",
     .type = OPT_CLEAR,
     .off = offsetof(struct migrate_args, o.compress),
     .help = "no LZ4 on the page stream"},
    {.name = "copy-rootfs",
     .type = OPT_FLAG,
     .off = offsetof(struct migrate_args, o.copy_rootfs),
     .help = "a tenant started with --rootfs DIR whose DIR the destination does not share: "
	     "copy the tree (while it runs, then what changed while frozen) to the same path "
	     "there (which must not exist); this host's DIR is removed once it moved. Without "
	     "it the destination must see the same tree (ferry's identity in DIR/.ferry)"},
    {.name = "shared-storage",
     .type = OPT_FLAG,
     .off = offsetof(struct migrate_args, o.shared_storage),
     .help = "VM tenants: the destination sees the same disk images (shared storage): they "
	     "are not copied. Without it a VM's raw disk images travel inside the stream "
	     "(QEMU's block migration) to the same paths there, which must not exist"},
    OPTS_JSON(struct migrate_args, json),
    {0},
};

static const struct cmd_spec migrate_spec = {
    .name = "migrate",
    .args = "NAME",
    .min_args = 1,
    .max_args = 1,
    .about = "Move the running tenant NAME to the host whose `ferry serve` listens on\n"
	     "HOST:PORT. Its memory streams from CRIU through the TLS session as it is\n"
	     "dumped; the destination restores it and holds it stopped; only then is the\n"
	     "copy here given up and the one there resumed. Until that point any failure\n"
	     "(restore error, lost connection, timeout) resumes the tenant here.\n"
	     "Its address and TCP connections move with it.\n",
    .notes = "Exit codes: 0 moved, 1 failed (see the message: the tenant runs here again),\n"
	     "            2 bad command line, 3 no such tenant here, 4 the tenant is not\n"
	     "            running or the destination cannot take it (name taken, address\n"
	     "            not in its subnets, root file system missing), 6 network/peer\n"
	     "            failure, 7 this host lacks what the mode needs or cannot move the\n"
	     "            tenant's address (docs/exit-codes.md).\n",
    .opts = migrate_opts,
};

int cmd_migrate(int argc, char **argv, const struct global_opts *g)
{
	struct migrate_args a = {.o = {.state_dir = g->state_dir,
				       .compress = true,
				       .timeout_ms = 60000,
				       .retry_for_s = 30,
				       .precopy_rounds = PRECOPY_ROUNDS_DEFAULT,
				       .precopy_shrink_pct = PRECOPY_SHRINK_DEFAULT,
				       .progress = migrate_progress_tty}};
	struct migrate_result r;
	char host[256], criu[4096];
	ferr_t err = {0};
	int pos, rc;

	if ((rc = opts_parse(&migrate_spec, &a, argc, argv, &pos)) != OPTS_RUN)
		return rc;
	a.o.tenant = argv[pos];
	if (parse_hostport(a.to, host, sizeof(host), &a.o.port, &err) < 0 ||
	    criu_locate(g->criu, criu, sizeof(criu), NULL, &err) < 0)
		return cmd_report("migrate", &err);
	a.o.host = host;
	a.o.criu_path = criu;
	rc = migrate_tenant(&a.o, &r, &err);
	if (a.json) {
		struct jw w;
		jw_init(&w, stdout);
		migrate_report_json(&w, NULL, &r, rc, &err);
		jw_finish(&w);
	} else if (rc == 0) {
		migrate_report_text(&r);
		migrate_report_remap(&r);
	}
	if (rc < 0)
		return cmd_report("migrate", &err);
	return FX_OK;
}
