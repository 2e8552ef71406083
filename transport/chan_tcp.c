/* Bottom layer: a connected stream socket (TCP or UNIX), and TCP setup. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "transport/chan_sock.h"

struct chan_fd {
	struct chan c;
};

static ssize_t fd_read(struct chan *c, void *buf, size_t len, ferr_t *err)
{
	for (;;) {
		ssize_t n = recv(c->fd, buf, len, 0);
		if (n >= 0)
			return n;
		if (errno != EINTR)
			return ferr_sys(err, FX_PEER, "receive from %s", c->peer);
	}
}

static ssize_t fd_write(struct chan *c, const void *buf, size_t len, ferr_t *err)
{
	for (;;) {
		ssize_t n = send(c->fd, buf, len, MSG_NOSIGNAL);
		if (n >= 0)
			return n;
		if (errno != EINTR)
			return ferr_sys(err, FX_PEER, "send to %s", c->peer);
	}
}

static int fd_shutdown(struct chan *c, ferr_t *err)
{
	if (shutdown(c->fd, SHUT_WR) < 0 && errno != ENOTCONN)
		return ferr_sys(err, FX_PEER, "shutdown of the connection to %s", c->peer);
	return 0;
}

static int fd_poll(struct chan *c, int timeout_ms)
{
	struct pollfd p = {.fd = c->fd, .events = POLLIN};
	int n;

	do
		n = poll(&p, 1, timeout_ms);
	while (n < 0 && errno == EINTR);
	return n < 0 ? 1 : n;
}

static void fd_close(struct chan *c)
{
	close(c->fd);
	free(c);
}

static const struct chan_ops fd_ops = {
    .read = fd_read,
    .write = fd_write,
    .shutdown = fd_shutdown,
    .poll = fd_poll,
    .close = fd_close,
};

struct chan *chan_fd_new(int fd, const char *peer, ferr_t *err)
{
	struct chan_fd *f = calloc(1, sizeof(*f));

	if (!f) {
		close(fd);
		ferr_set(err, FX_FAIL, "out of memory");
		return NULL;
	}
	chan_init(&f->c, &fd_ops, NULL, fd, peer);
	return &f->c;
}

static void tune_tcp(int fd)
{
	int one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static int connect_timeout(int fd, const struct sockaddr *sa, socklen_t len, int timeout_ms)
{
	int fl = fcntl(fd, F_GETFL), soerr = 0;
	socklen_t sl = sizeof(soerr);
	struct pollfd p = {.fd = fd, .events = POLLOUT};

	fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	if (connect(fd, sa, len) < 0) {
		if (errno != EINPROGRESS)
			return -1;
		int n;
		do
			n = poll(&p, 1, timeout_ms);
		while (n < 0 && errno == EINTR);
		if (n == 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		if (n < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
			return -1;
		if (soerr) {
			errno = soerr;
			return -1;
		}
	}
	fcntl(fd, F_SETFL, fl);
	return 0;
}

struct chan *chan_tcp_connect(const char *host, uint16_t port, int timeout_ms, ferr_t *err)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res, *ai;
	char ports[8], peer[128];
	int fd = -1, rc, saved = 0;

	snprintf(ports, sizeof(ports), "%u", port);
	snprintf(peer, sizeof(peer), strchr(host, ':') ? "[%s]:%u" : "%s:%u", host, port);
	rc = getaddrinfo(host, ports, &hints, &res);
	if (rc) {
		ferr_set(err, FX_PEER, "cannot resolve %s: %s", host, gai_strerror(rc));
		return NULL;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0)
			continue;
		if (connect_timeout(fd, ai->ai_addr, ai->ai_addrlen, timeout_ms) == 0)
			break;
		saved = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		errno = saved ? saved : ECONNREFUSED;
		ferr_sys(err, FX_PEER, "connect to %s (is 'ferry serve' running there?)", peer);
		return NULL;
	}
	tune_tcp(fd);
	return chan_fd_new(fd, peer, err);
}

int chan_tcp_listen(const char *addr, uint16_t port, int backlog, ferr_t *err)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *res;
	char ports[8];
	int fd, one = 1, rc;

	snprintf(ports, sizeof(ports), "%u", port);
	rc = getaddrinfo(addr && *addr ? addr : NULL, ports, &hints, &res);
	if (rc)
		return ferr_set(err, FX_USAGE, "cannot resolve listen address %s: %s", addr,
				gai_strerror(rc));
	fd = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC, res->ai_protocol);
	if (fd < 0) {
		freeaddrinfo(res);
		return ferr_sys(err, FX_FAIL, "socket");
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, backlog) < 0) {
		ferr_sys(err, FX_FAIL, "listen on %s:%u", addr, port);
		freeaddrinfo(res);
		close(fd);
		return -1;
	}
	freeaddrinfo(res);
	return fd;
}

struct chan *chan_accept(int lfd, ferr_t *err)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[INET6_ADDRSTRLEN] = "local", peer[128];
	int fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC);

	if (fd < 0) {
		ferr_sys(err, FX_PEER, "accept");
		return NULL;
	}
	if (ss.ss_family == AF_INET) {
		struct sockaddr_in *s = (struct sockaddr_in *)&ss;
		inet_ntop(AF_INET, &s->sin_addr, host, sizeof(host));
		snprintf(peer, sizeof(peer), "%s:%u", host, ntohs(s->sin_port));
		tune_tcp(fd);
	} else if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *s = (struct sockaddr_in6 *)&ss;
		inet_ntop(AF_INET6, &s->sin6_addr, host, sizeof(host));
		snprintf(peer, sizeof(peer), "[%s]:%u", host, ntohs(s->sin6_port));
		tune_tcp(fd);
	} else {
		snprintf(peer, sizeof(peer), "unix socket");
	}
	return chan_fd_new(fd, peer, err);
}
