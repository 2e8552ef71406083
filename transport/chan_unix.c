/* Bottom layer over UNIX stream sockets (local agents, tests, a relay to CRIU). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "transport/chan_sock.h"

static int unix_addr(const char *path, struct sockaddr_un *sa, ferr_t *err)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa->sun_path))
		return ferr_set(err, FX_USAGE, "socket path too long: %s", path);
	strcpy(sa->sun_path, path);
	return 0;
}

struct chan *chan_unix_connect(const char *path, ferr_t *err)
{
	struct sockaddr_un sa;
	int fd;

	if (unix_addr(path, &sa, err) < 0)
		return NULL;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		ferr_sys(err, FX_FAIL, "socket");
		return NULL;
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		ferr_sys(err, FX_PEER, "connect to %s", path);
		close(fd);
		return NULL;
	}
	return chan_fd_new(fd, path, err);
}

int chan_unix_listen(const char *path, int backlog, ferr_t *err)
{
	struct sockaddr_un sa;
	int fd;

	if (unix_addr(path, &sa, err) < 0)
		return -1;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return ferr_sys(err, FX_FAIL, "socket");
	unlink(path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, backlog) < 0) {
		ferr_sys(err, FX_FAIL, "listen on %s", path);
		close(fd);
		return -1;
	}
	return fd;
}
