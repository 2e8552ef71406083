/* ferry-criu-hook: CRIU's action script during a post-copy `ferry migrate`
 * (migrate/migrate_postcopy.c). CRIU execs it for every action, while the
 * tenant is frozen for most of them, so it is a small static program: no
 * shell, no dynamic loader, no libraries (`ferry criu-hook` does the same
 * job when this file is missing, at a few ms more per action).
 *
 * Only post-dump matters: it asks the waiting `ferry migrate` over the UNIX
 * socket named in FERRY_HOOK_SOCK and exits 0 for "ok", 1 otherwise. When
 * ferry migrate is gone the connection fails: exit 1, CRIU aborts the dump
 * and the tenant resumes. Every other action is "ok" at once. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int main(void)
{
	const char *action = getenv("CRTOOLS_SCRIPT_ACTION"), *path = getenv("FERRY_HOOK_SOCK");
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char ans[16] = "";
	socklen_t len;
	ssize_t n;
	int fd;

	if (!action || !path || !*path || strlen(path) >= sizeof(sa.sun_path)) {
		fputs("ferry-criu-hook: only CRIU runs this, during `ferry migrate`\n", stderr);
		return 2;
	}
	if (strcmp(action, "post-dump"))
		return 0;
	memcpy(sa.sun_path, path, strlen(path));
	if (path[0] == '@')
		sa.sun_path[0] = '\0'; /* abstract name */
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, len) < 0)
		return 1;
	if (write(fd, "post-dump\n", 10) != 10)
		return 1;
	n = read(fd, ans, sizeof(ans) - 1);
	close(fd);
	return n >= 2 && !strncmp(ans, "ok", 2) ? 0 : 1;
}
