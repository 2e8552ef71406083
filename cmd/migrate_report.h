/* Printing a migration's result (human or JSON), and the --mode option;
 * shared by migrate and evacuate. */
#ifndef FERRY_CMD_MIGRATE_REPORT_H
#define FERRY_CMD_MIGRATE_REPORT_H

#include <stdbool.h>

#include "lib/json.h"
#include "migrate/migrate.h"

/* One JSON object (key may be NULL) describing r; rc/err the outcome. */
void migrate_report_json(struct jw *w, const char *key, const struct migrate_result *r, int rc,
			 const ferr_t *err);
/* Human-readable summary on stdout. */
void migrate_report_text(const struct migrate_result *r);
/* One line on stderr when the destination re-mapped the tenant's ID range
 * (its range was taken there); nothing otherwise. */
void migrate_report_remap(const struct migrate_result *r);
/* --mode's parser (cmd/opts.h OPT_FN): field is an enum mig_mode. */
int migrate_opt_mode(const char *arg, void *field, ferr_t *err);
/* Progress on a terminal (stderr); arg unused. */
void migrate_progress_tty(const char *stage, const struct migrate_result *r, void *arg);

#endif
