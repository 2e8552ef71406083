#include "lib/util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

double ms_since(uint64_t start_ns)
{
	return (double)(now_ns() - start_ns) / 1e6;
}

int64_t wall_time(void)
{
	return (int64_t)time(NULL);
}

bool tenant_name_valid(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > 63 || name[0] == '.' || name[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '.' || c == '-'))
			return false;
	}
	return true;
}

int parse_hostport(const char *s, char *host, size_t hostlen, uint16_t *port, ferr_t *err)
{
	const char *colon, *hs = s, *he;
	char *end;
	long p;

	if (s[0] == '[') {
		he = strchr(s, ']');
		if (!he || he[1] != ':')
			return ferr_set(err, FX_USAGE, "bad address '%s': expected [V6ADDR]:PORT",
					s);
		hs = s + 1;
		colon = he + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return ferr_set(err, FX_USAGE, "bad address '%s': expected HOST:PORT", s);
		he = colon;
	}
	if ((size_t)(he - hs) >= hostlen || he == hs)
		return ferr_set(err, FX_USAGE, "bad host in '%s'", s);
	memcpy(host, hs, (size_t)(he - hs));
	host[he - hs] = '\0';
	p = strtol(colon + 1, &end, 10);
	if (*end || p <= 0 || p > 65535)
		return ferr_set(err, FX_USAGE, "bad port in '%s': expected 1..65535", s);
	*port = (uint16_t)p;
	return 0;
}

const char *fmt_bytes(uint64_t n, char *buf, size_t len)
{
	static const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	double v = (double)n;
	int i = 0;

	while (v >= 1024 && i < 4) {
		v /= 1024;
		i++;
	}
	if (i == 0)
		snprintf(buf, len, "%llu B", (unsigned long long)n);
	else
		snprintf(buf, len, "%.1f %s", v, u[i]);
	return buf;
}

int xsnprintf(char *buf, size_t len, ferr_t *err, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= len)
		return ferr_set(err, FX_FAIL, "string too long (%d bytes)", n);
	return 0;
}

int xsnprintf_path(char *buf, size_t len, const char *dir, const char *rel)
{
	int n = snprintf(buf, len, "%s/%s", dir, rel);

	return (n < 0 || (size_t)n >= len) ? -1 : 0;
}
