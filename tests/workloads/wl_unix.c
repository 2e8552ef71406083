/*
 * wl_unix [--interval-ms MS (1)]
 *
 * Forks a child and plays ping-pong with it over a SOCK_STREAM socketpair.
 * Also holds, unread, data queued at dump time: datagrams of several sizes
 * in both directions of a SOCK_DGRAM socketpair and a block of bytes in a
 * second SOCK_STREAM pair. Verify: the ping-pong still progresses and the
 * child saw every number once; the queued datagrams are all there, in
 * order, with their boundaries and content; the queued stream bytes too.
 */
#include "zdtm.h"

#include <getopt.h>
#include <sys/socket.h>

#define NDGRAM	    6
#define STREAM_HELD 3000

static const size_t dgram_sizes[NDGRAM] = {1, 100, 1000, 4000, 17, 65000};

static unsigned char msg_byte(unsigned dir, unsigned msg, size_t i)
{
	return (unsigned char)zdtm_mix64(((uint64_t)dir << 40) ^ ((uint64_t)msg << 24) ^ i);
}

static void fill_msg(unsigned char *buf, unsigned dir, unsigned msg, size_t len)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = msg_byte(dir, msg, i);
}

static int queue_dgrams(int fd, unsigned dir)
{
	static unsigned char buf[65536];

	for (unsigned m = 0; m < NDGRAM; m++) {
		fill_msg(buf, dir, m, dgram_sizes[m]);
		if (send(fd, buf, dgram_sizes[m], 0) != (ssize_t)dgram_sizes[m])
			return -1;
	}
	return 0;
}

static void check_dgrams(int fd, unsigned dir)
{
	static unsigned char buf[65536 + 1], want[65536];
	ssize_t n;

	for (unsigned m = 0; m < NDGRAM; m++) {
		do
			n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		while (n < 0 && errno == EINTR);
		if (n < 0)
			zdtm_fail("datagram %u (direction %u) is gone: %s", m, dir,
				  strerror(errno));
		if ((size_t)n != dgram_sizes[m])
			zdtm_fail("datagram %u (direction %u) has %zd bytes, expected %zu", m, dir,
				  n, dgram_sizes[m]);
		fill_msg(want, dir, m, dgram_sizes[m]);
		if (memcmp(buf, want, dgram_sizes[m]) != 0)
			zdtm_fail("datagram %u (direction %u) content differs", m, dir);
	}
	n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
	if (n >= 0)
		zdtm_fail("an extra datagram of %zd bytes (direction %u)", n, dir);
}

static void check_stream_held(int fd)
{
	unsigned char buf[STREAM_HELD + 1], want[STREAM_HELD];
	size_t got = 0;
	ssize_t n;

	while (got < sizeof(buf)) {
		n = recv(fd, buf + got, sizeof(buf) - got, MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	if (got != STREAM_HELD)
		zdtm_fail("queued stream data: %zu bytes, expected %d", got, STREAM_HELD);
	fill_msg(want, 2, 0, STREAM_HELD);
	if (memcmp(buf, want, STREAM_HELD) != 0)
		zdtm_fail("queued stream data differs");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {{"interval-ms", required_argument, 0, 'i'},
					     {"help", no_argument, 0, 'h'},
					     {0, 0, 0, 0}};
	unsigned char held[STREAM_HELD];
	struct zdtm_pp pp = {0};
	int sp[2], dg[2], st[2], o;
	unsigned interval = 1;

	while ((o = getopt_long(argc, argv, "i:h", opts, NULL)) != -1) {
		if (o != 'i') {
			fprintf(stderr, "usage: %s [--interval-ms MS (1)]\n", argv[0]);
			return 2;
		}
		interval = (unsigned)zdtm_parse_long("--interval-ms", optarg, 0, 60000);
	}
	zdtm_init();
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sp) < 0 ||
	    socketpair(AF_UNIX, SOCK_DGRAM, 0, dg) < 0 ||
	    socketpair(AF_UNIX, SOCK_STREAM, 0, st) < 0) {
		perror("wl_unix: socketpair");
		return 2;
	}
	pp.child = fork();
	if (pp.child < 0) {
		perror("wl_unix: fork");
		return 2;
	}
	if (pp.child == 0) {
		close(sp[0]);
		close(dg[0]);
		close(dg[1]);
		close(st[0]);
		close(st[1]);
		zdtm_pp_child(sp[1], sp[1]);
	}
	close(sp[1]);
	pp.wfd = pp.rfd = sp[0];

	fill_msg(held, 2, 0, STREAM_HELD);
	if (queue_dgrams(dg[0], 0) < 0 || queue_dgrams(dg[1], 1) < 0 ||
	    zdtm_write_full(st[0], held, STREAM_HELD) < 0) {
		perror("wl_unix: queueing messages");
		return 2;
	}
	if (!zdtm_pp_step(&pp, -1)) {
		fprintf(stderr, "wl_unix: first exchange failed: %s\n", zdtm_failure);
		return 2;
	}
	zdtm_ready();
	zdtm_pp_run(&pp, interval);
	check_dgrams(dg[1], 0);
	check_dgrams(dg[0], 1);
	check_stream_held(st[1]);
	zdtm_pp_verify(&pp);
	zdtm_pass();
}
