#include "lib/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

static enum log_level cur_level = LOG_WARN;

void log_set_level(enum log_level lvl)
{
	cur_level = lvl;
}

enum log_level log_get_level(void)
{
	return cur_level;
}

void log_msg(enum log_level lvl, const char *prefix, const char *fmt, ...)
{
	static const char *names[] = {"error", "warning", "info", "debug"};
	va_list ap;

	if (lvl > cur_level)
		return;
	if (cur_level >= LOG_DEBUG) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		fprintf(stderr, "[%ld.%06ld] ", (long)ts.tv_sec, ts.tv_nsec / 1000);
	}
	fprintf(stderr, "ferry: %s%s%s: ", prefix, *prefix ? ": " : "", names[lvl]);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}
