/* Small helpers: time, strings, parsing. */
#ifndef FERRY_UTIL_H
#define FERRY_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Monotonic clock in nanoseconds / milliseconds (double). */
uint64_t now_ns(void);
double ms_since(uint64_t start_ns);
/* Wall clock, seconds since the epoch. */
int64_t wall_time(void);

/* Tenant names: [A-Za-z0-9_.-], 1..63 chars, not starting with '.' or '-'. */
bool tenant_name_valid(const char *name);

/* Parse "HOST:PORT" ("[v6]:PORT" too). host gets at most hostlen-1 chars. */
int parse_hostport(const char *s, char *host, size_t hostlen, uint16_t *port, ferr_t *err);

/* Human-readable byte count into buf ("1.5 GiB"). Returns buf. */
const char *fmt_bytes(uint64_t n, char *buf, size_t len);

/* snprintf that reports truncation as an error. */
int xsnprintf(char *buf, size_t len, ferr_t *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* dir + "/" + rel into buf; -1 on truncation (no error object). */
int xsnprintf_path(char *buf, size_t len, const char *dir, const char *rel);

#endif
