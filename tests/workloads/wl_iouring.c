/*
 * wl_iouring
 *
 * Holds an io_uring instance open (io_uring_setup with 8 entries): a kind of
 * file CRIU 4.1 cannot dump, so every dump of it fails inside CRIU, after
 * the freeze. Tests use it to see how ferry reports CRIU's own failures.
 * Ready once the ring is open. Verify: the ring is still open.
 */
#include "zdtm.h"

#include <sys/syscall.h>

#ifndef __NR_io_uring_setup
#define __NR_io_uring_setup 425
#endif

int main(void)
{
	char params[120] = {0}; /* struct io_uring_params, zeroed */
	char link[64], p[64];
	long fd;

	zdtm_init();
	fd = syscall(__NR_io_uring_setup, 8, params);
	if (fd < 0)
		zdtm_fail("io_uring_setup: %s", strerror(errno));
	zdtm_ready();
	while (!zdtm_sleep_ms(100))
		zdtm_reap(0, NULL);
	snprintf(p, sizeof(p), "/proc/self/fd/%ld", fd);
	ssize_t n = readlink(p, link, sizeof(link) - 1);
	if (n < 0)
		zdtm_fail("the io_uring fd %ld is gone", fd);
	zdtm_pass();
}
