/* A QMP client (QEMU Machine Protocol) over QEMU's UNIX socket, JSON through
 * jansson: the greeting and capabilities negotiation, commands with their
 * "return" or "error", asynchronous events skipped while a reply is awaited
 * (the last few kept for qmp_event_seen), file descriptors passed with a
 * command (SCM_RIGHTS, for `getfd`). One caller at a time per session. */
#ifndef FERRY_QMP_H
#define FERRY_QMP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "lib/err.h"

struct qmp;

/* Connect to the socket at path, retrying until timeout_ms passed (QEMU
 * creates it while it starts), read the greeting and leave the
 * negotiation mode (qmp_capabilities). */
int qmp_open(const char *path, int timeout_ms, struct qmp **out, ferr_t *err);
/* The same on a connected socket (taken over: closed by qmp_close). */
int qmp_attach(int fd, int timeout_ms, struct qmp **out, ferr_t *err);
void qmp_close(struct qmp *q);

/* Run a command (args may be NULL; the reference is stolen). *ret gets the
 * "return" value (a new reference; ret may be NULL); an "error" reply fails
 * with FX_FAIL and QEMU's description. timeout_ms bounds the wait for the
 * reply. fd >= 0 travels with the command (SCM_RIGHTS). */
int qmp_exec(struct qmp *q, const char *cmd, json_t *args, int fd, int timeout_ms, json_t **ret,
	     ferr_t *err);
/* Was the event (e.g. "STOP") received since the session began? */
bool qmp_event_seen(const struct qmp *q, const char *event);

/* Pure parts (unit-tested): one reply line. Returns 1 for an event (*event
 * set to its name, a pointer into *msg), 0 for a reply (its "return" in
 * *ret, new reference), -1 with err for an "error" reply or bad JSON. *msg
 * (may be NULL) gets the parsed object, to json_decref. */
int qmp_parse_line(const char *line, size_t len, json_t **ret, const char **event, json_t **msg,
		   ferr_t *err);

#endif
