#include "lib/err.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int ferr_set(ferr_t *err, int code, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return -1;
	err->code = code ? code : FX_FAIL;
	err->sys_errno = 0;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return -1;
}

int ferr_sys(ferr_t *err, int code, const char *fmt, ...)
{
	int e = errno;
	va_list ap;
	size_t n;

	if (!err)
		return -1;
	err->code = code ? code : FX_FAIL;
	if (e == ENOSPC || e == EDQUOT)
		err->code = FX_NOSPACE;
	err->sys_errno = e;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	n = strlen(err->msg);
	snprintf(err->msg + n, sizeof(err->msg) - n, ": %s", strerror(e));
	errno = e;
	return -1;
}

int ferr_wrap(ferr_t *err, const char *fmt, ...)
{
	char pre[512], old[sizeof(err->msg)];
	va_list ap;

	if (!err)
		return -1;
	va_start(ap, fmt);
	vsnprintf(pre, sizeof(pre), fmt, ap);
	va_end(ap);
	memcpy(old, err->msg, sizeof(old));
	snprintf(err->msg, sizeof(err->msg), "%s: %s", pre, old);
	if (!err->code)
		err->code = FX_FAIL;
	return -1;
}

void ferr_clear(ferr_t *err)
{
	if (err)
		memset(err, 0, sizeof(*err));
}
