/* Preloaded into the private CRIU 4.1.1 (scripts/deps.sh). Linux >= 6.16
 * restricts SO_PASSCRED / SO_PASSSEC to AF_UNIX, AF_NETLINK and Bluetooth
 * sockets: getsockopt on a TCP socket fails with EOPNOTSUPP, and CRIU 4.1.1
 * then refuses to dump any process with an inet socket ("Can't get 1:16 opt").
 * Upstream CRIU fixed it after 4.1.1 (checkpoint-restore/criu#2705). For those
 * two options only, an EOPNOTSUPP read reports "off" (which is what the kernel
 * enforces for such sockets) and an EOPNOTSUPP write of "off" succeeds.
 * Every other call goes straight to libc. */
#include <dlfcn.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

static int passopt(int level, int opt)
{
	return level == SOL_SOCKET && (opt == SO_PASSCRED || opt == SO_PASSSEC);
}

int getsockopt(int fd, int level, int opt, void *val, socklen_t *len)
{
	static int (*real)(int, int, int, void *, socklen_t *);
	if (!real)
		real = (int (*)(int, int, int, void *, socklen_t *))dlsym(RTLD_NEXT, "getsockopt");
	int r = real(fd, level, opt, val, len);
	if (r < 0 && errno == EOPNOTSUPP && passopt(level, opt) && val && len &&
	    *len >= sizeof(int)) {
		memset(val, 0, sizeof(int));
		*len = sizeof(int);
		return 0;
	}
	return r;
}

int setsockopt(int fd, int level, int opt, const void *val, socklen_t len)
{
	static int (*real)(int, int, int, const void *, socklen_t);
	if (!real)
		real =
		    (int (*)(int, int, int, const void *, socklen_t))dlsym(RTLD_NEXT, "setsockopt");
	int r = real(fd, level, opt, val, len);
	if (r < 0 && errno == EOPNOTSUPP && passopt(level, opt) && val && len >= sizeof(int) &&
	    *(const int *)val == 0)
		return 0;
	return r;
}
