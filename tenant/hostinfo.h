/* Facts about this host recorded in a manifest's SourceHost. */
#ifndef FERRY_HOSTINFO_H
#define FERRY_HOSTINFO_H

#include <stddef.h>

#include "lib/err.h"

struct hostinfo {
	char hostname[256];
	char kernel[256];    /* "Linux 6.18.0 #1 SMP ... x86_64" */
	char cpu_model[256]; /* /proc/cpuinfo "model name", "" if absent */
	char criu_version[96];
};

/* criu_path may be NULL: criu_version stays "". */
int hostinfo_collect(const char *criu_path, struct hostinfo *h, ferr_t *err);
/* The first "model name" of a /proc/cpuinfo text into out ("" if none). */
void hostinfo_parse_cpu_model(const char *cpuinfo, char *out, size_t len);

#endif
