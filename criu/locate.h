/* Where ferry finds CRIU: --criu PATH, then FERRY_CRIU, then the path
 * `make deps` recorded (.deps/criu-path), then `criu` on PATH. */
#ifndef FERRY_CRIUPATH_H
#define FERRY_CRIUPATH_H

#include <stddef.h>

#include "lib/err.h"

/* opt: the --criu value or NULL. out gets an executable path. source (may be
 * NULL) gets a word saying where it came from ("--criu", "FERRY_CRIU",
 * "make deps", "PATH"). FX_HOST when none is found. */
int criu_locate(const char *opt, char *out, size_t len, const char **source, ferr_t *err);

#endif
