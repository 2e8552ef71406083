/* CRIU's logs: the one rule for the level every CRIU process logs at, and
 * the lines of a failed run worth an error message. */
#ifndef FERRY_CRIU_LOG_H
#define FERRY_CRIU_LOG_H

#include <stddef.h>

/* The log level of every CRIU process ferry starts, through RPC
 * (criu_common_opts.log_level) and on a command line (-vN): what a caller
 * asked for (1..4), and 4, CRIU's full debug log, when it asked for
 * nothing (0) or for something out of range.
 *
 * Why 4 by default: ferry reads CRIU's logs back. The downtime of a
 * post-copy migration starts at the freeze read from dump.log
 * (criu/timeline.c needs its timestamped debug lines), a failed request's
 * error quotes the log's last "Error" lines (criu_log_tail), and a failed
 * migration can only be understood from them afterwards; tests read them
 * too. The logs land in the tenant's state directory (dump.log,
 * restore.log, pre-dump.log, page-server.log, lazy-pages.log). */
#define CRIU_LOG_DEFAULT 4
int criu_log_level(int requested);

/* Last lines of a CRIU log that say "Error" (else the last lines), joined by
 * " | ", into out. Returns out ("" when the log cannot be read). */
const char *criu_log_tail(const char *log_path, char *out, size_t len);

#endif
