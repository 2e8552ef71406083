/* Socket layers at the bottom of a chan stack: TCP (chan_tcp.c) and UNIX
 * stream sockets (chan_unix.c). Both wrap a connected fd (chan_fd_new). */
#ifndef FERRY_CHAN_SOCK_H
#define FERRY_CHAN_SOCK_H

#include <stdint.h>

#include "transport/chan.h"

/* Wrap a connected stream socket (owned from now on). */
struct chan *chan_fd_new(int fd, const char *peer, ferr_t *err);

/* TCP: connect with a timeout (ms); FX_PEER on failure. */
struct chan *chan_tcp_connect(const char *host, uint16_t port, int timeout_ms, ferr_t *err);
/* Listening socket on addr ("0.0.0.0", "::", an address or a name); returns the fd. */
int chan_tcp_listen(const char *addr, uint16_t port, int backlog, ferr_t *err);
/* Accept one connection on a listening TCP or UNIX fd (may fail with EINTR:
 * err->sys_errno tells). */
struct chan *chan_accept(int lfd, ferr_t *err);

/* UNIX stream sockets. */
struct chan *chan_unix_connect(const char *path, ferr_t *err);
int chan_unix_listen(const char *path, int backlog, ferr_t *err);

#endif
