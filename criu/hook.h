/* CRIU's action script during a post-copy `ferry migrate` (criu/lazydump.h,
 * migrate/migrate_postcopy.c), one source for both forms it takes:
 * build/ferry-criu-hook (hook/ferry_criu_hook.c), a small static program
 * next to build/ferry, and `ferry criu-hook` (cmd/criu_hook.c), the
 * fallback a shell script runs when that program is missing. CRIU execs
 * the script for every action, mostly while the tenant is frozen: hence no
 * shell, no dynamic loader, no libraries. This file uses libc only (no
 * lib/, no OpenSSL, no libnl) so that the static program links.
 *
 * Only post-dump matters: the script writes "post-dump\n" to the UNIX
 * socket named in CRIU_HOOK_SOCK_ENV (a leading '@' names an abstract
 * socket) and the waiting `ferry migrate` answers "ok\n" or "fail\n". When
 * ferry migrate is gone the connection fails: "fail", CRIU aborts the dump
 * and the tenant resumes. Every other action is "ok" at once (CRIU runs
 * network-unlock and status-ready while ferry migrate is in the handover). */
#ifndef FERRY_CRIU_HOOK_H
#define FERRY_CRIU_HOOK_H

#include <stdbool.h>

#define CRIU_HOOK_SOCK_ENV "FERRY_HOOK_SOCK"
#define CRIU_HOOK_SOCK_MAX 108 /* sizeof(sockaddr_un.sun_path) */

/* Exit codes of the script (the same numbers as FX_OK, FX_FAIL, FX_USAGE). */
enum criu_hook_result {
	CRIU_HOOK_OK = 0,    /* CRIU goes on */
	CRIU_HOOK_FAIL = 1,  /* CRIU fails the action */
	CRIU_HOOK_USAGE = 2, /* not run by CRIU during a migration: the caller says so */
};

/* The other end of the connected UNIX socket fd runs as our effective user
 * (SO_PEERCRED): ferry migrate accepts an action only from such a peer (a
 * local user who found the socket's name cannot start the handover), and
 * the script speaks only to such a listener. */
bool criu_hook_peer_ok(int fd);

/* Answer the action in CRTOOLS_SCRIPT_ACTION. Prints nothing. */
enum criu_hook_result criu_hook_run(void);

#endif
