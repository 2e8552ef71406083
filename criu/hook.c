/* CRIU's action script of post-copy (hook.h): libc only. */
#include "criu/hook.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

_Static_assert(CRIU_HOOK_SOCK_MAX == sizeof(((struct sockaddr_un *)0)->sun_path),
	       "CRIU_HOOK_SOCK_MAX is sun_path's size");

bool criu_hook_peer_ok(int fd)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);

	return getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) == 0 && len == sizeof(cr) &&
	       cr.uid == geteuid();
}

enum criu_hook_result criu_hook_run(void)
{
	const char *action = getenv("CRTOOLS_SCRIPT_ACTION");
	const char *path = getenv(CRIU_HOOK_SOCK_ENV);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char ans[16] = "";
	socklen_t len;
	ssize_t n;
	int fd;

	if (!action || !path || !*path || strlen(path) >= sizeof(sa.sun_path))
		return CRIU_HOOK_USAGE;
	/* Only the handover matters to ferry migrate, which is busy in it
	 * while CRIU runs later actions (network-unlock, status-ready), and the
	 * network lock before it (the freeze: it holds the tenant's packets) */
	bool lock = !strcmp(action, "network-lock");
	if (strcmp(action, "post-dump") && !lock)
		return CRIU_HOOK_OK;
	memcpy(sa.sun_path, path, strlen(path));
	if (path[0] == '@')
		sa.sun_path[0] = '\0'; /* abstract name */
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return CRIU_HOOK_FAIL;
	/* only a `ferry migrate` of our own user answers for the dump */
	if (connect(fd, (struct sockaddr *)&sa, len) < 0 || !criu_hook_peer_ok(fd) ||
	    (lock ? write(fd, "network-lock\n", 13) != 13 : write(fd, "post-dump\n", 10) != 10)) {
		close(fd);
		return CRIU_HOOK_FAIL;
	}
	n = read(fd, ans, sizeof(ans) - 1);
	close(fd);
	return n >= 2 && !strncmp(ans, "ok", 2) ? CRIU_HOOK_OK : CRIU_HOOK_FAIL;
}
