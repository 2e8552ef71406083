/* Moments of a CRIU run read back from its log (-v4: every line starts with
 * "(SS.UUUUUU)", seconds since CRIU started logging). */
#ifndef FERRY_CRIU_TIMELINE_H
#define FERRY_CRIU_TIMELINE_H

#include "lib/err.h"

/* A dump's log: from the freeze (the last line before the first "Seized
 * task") to the first line CRIU logged after its post-dump action script
 * returned, in ms. */
int criu_log_frozen_to_postdump(const char *log, double *ms, ferr_t *err);

#endif
