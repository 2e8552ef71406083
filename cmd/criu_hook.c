/* ferry criu-hook: CRIU's action script while `ferry migrate` runs a
 * post-copy dump through the CRIU command line (migrate/migrate_postcopy.c).
 * CRIU runs it for every action with CRTOOLS_SCRIPT_ACTION set; it asks the
 * waiting `ferry migrate` over the UNIX socket in FERRY_HOOK_SOCK and exits
 * 0 ("ok") or 1 for post-dump (the handover);
 * every other action is "ok" at once. When ferry migrate is gone the
 * connection fails: exit 1, CRIU aborts the dump and the tenant resumes. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "cmd/cmd.h"

int cmd_criu_hook(int argc, char **argv, const struct global_opts *g)
{
	const char *action = getenv("CRTOOLS_SCRIPT_ACTION"), *path = getenv("FERRY_HOOK_SOCK");
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char line[128], ans[16] = "";
	ssize_t n;
	int fd;

	(void)argc;
	(void)argv;
	(void)g;
	if (!action || !path || strlen(path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "ferry criu-hook: only CRIU runs this, during `ferry migrate`\n");
		return FX_USAGE;
	}
	/* Only the handover matters to ferry migrate, which is busy in it
	 * while CRIU runs later actions (network-unlock, status-ready) */
	if (strcmp(action, "post-dump"))
		return FX_OK;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (path[0] == '@')
		sa.sun_path[0] = '\0'; /* abstract name */
	socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, len) < 0)
		return FX_FAIL;
	snprintf(line, sizeof(line), "%s\n", action);
	if (write(fd, line, strlen(line)) != (ssize_t)strlen(line))
		return FX_FAIL;
	n = read(fd, ans, sizeof(ans) - 1);
	close(fd);
	if (n >= 2 && !strncmp(ans, "ok", 2))
		return FX_OK;
	return FX_FAIL;
}
