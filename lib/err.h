/* Error object: every fallible function returns a negative value and fills
 * the ferr_t passed last. The caller that handles the error reports it. */
#ifndef FERRY_ERR_H
#define FERRY_ERR_H

#include <stdarg.h>

/* Process exit codes: documented in docs/exit-codes.md. */
enum ferry_exit {
	FX_OK = 0,
	FX_FAIL = 1,	  /* generic failure */
	FX_USAGE = 2,	  /* bad command line */
	FX_NOTFOUND = 3,  /* tenant, file or image set does not exist */
	FX_CONFLICT = 4,  /* name already taken / tenant in the wrong state */
	FX_INTEGRITY = 5, /* corrupt or mismatching image / manifest / frame */
	FX_PEER = 6,	  /* network or peer failure (connect, TLS, disconnect) */
	FX_HOST = 7,	  /* host not ready (CRIU missing, kernel feature absent) */
	FX_NOSPACE = 8,	  /* disk full */
};

typedef struct ferr {
	int code;      /* one of enum ferry_exit; 0 when no error */
	int sys_errno; /* errno captured by ferr_sys, else 0 */
	char msg[1024];
} ferr_t;

/* Set err (if not NULL) and return -1. */
int ferr_set(ferr_t *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Like ferr_set, appends ": strerror(errno)"; code FX_NOSPACE on ENOSPC/EDQUOT. */
int ferr_sys(ferr_t *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Prefix the existing message with more context: "ctx: old message". */
int ferr_wrap(ferr_t *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void ferr_clear(ferr_t *err);

#endif
