/* Page-server relay (transport/relay.c) between two chans over a socket pair:
 * bytes cross both ways intact, in order, LZ4 shrinks compressible chunks,
 * both directions end with STREAM_CLOSE; a frame on the wrong stream is a
 * protocol error. Mode names parse. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "transport/chan_sock.h"
#include "transport/frame.h"
#include "migrate/migrate.h"
#include "transport/relay.h"
#include "unit.h"
#include "transport/wire.h"

struct side {
	struct chan *c;
	int sk; /* the relay's end of the local pair */
	struct relay_opts o;
	struct relay_stats st;
	ferr_t err;
	int rc;
};

static void *run_side(void *arg)
{
	struct side *s = arg;

	s->rc = relay_run(s->c, s->sk, &s->o, &s->st, &s->err);
	return NULL;
}

static void fill(uint8_t *p, size_t n)
{
	unsigned x = 12345;

	for (size_t i = 0; i < n; i++) {
		x = x * 1103515245 + 12345;
		/* half zeros (compressible), half noise */
		p[i] = (i / 65536) % 2 ? (uint8_t)(x >> 16) : 0;
	}
}

static int read_all(int fd, uint8_t *p, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = read(fd, p + got, n - got);
		if (r <= 0)
			return -1;
		got += (size_t)r;
	}
	return 0;
}

struct writer {
	int fd;
	const uint8_t *p;
	size_t n;
	int rc;
};

/* app a writes in its own thread: the path holds less than the data */
static void *write_side(void *arg)
{
	struct writer *w = arg;
	size_t off = 0;

	while (off < w->n) {
		ssize_t r = write(w->fd, w->p + off, w->n - off);
		if (r <= 0) {
			w->rc = -1;
			return NULL;
		}
		off += (size_t)r;
	}
	shutdown(w->fd, SHUT_WR);
	return NULL;
}

static void test_both_ways(void)
{
	int wire[2], la[2], lb[2];
	size_t n = 3 << 20;
	uint8_t *data = malloc(n), *got = malloc(n), reply[4] = {0};
	struct side a = {0}, b = {0};
	pthread_t ta, tb, tw;
	struct writer wr = {0};
	ferr_t e = {0};

	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, wire) == 0);
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, la) == 0);
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, lb) == 0);
	a.c = chan_fd_new(wire[0], "a", &e);
	b.c = chan_fd_new(wire[1], "b", &e);
	CHECK(a.c && b.c);
	a.sk = la[1];
	b.sk = lb[1];
	a.o = (struct relay_opts){.stream = 1, .lz4 = true, .idle_ms = 10000};
	b.o = (struct relay_opts){.stream = 1, .lz4 = true, .idle_ms = 10000};
	pthread_create(&ta, NULL, run_side, &a);
	pthread_create(&tb, NULL, run_side, &b);
	fill(data, n);
	/* app a sends, app b receives everything then answers and closes */
	wr = (struct writer){.fd = la[0], .p = data, .n = n};
	pthread_create(&tw, NULL, write_side, &wr);
	CHECK(read_all(lb[0], got, n) == 0);
	pthread_join(tw, NULL);
	CHECK(wr.rc == 0);
	CHECK(!memcmp(data, got, n));
	CHECK(write(lb[0], "ACK!", 4) == 4);
	close(lb[0]);
	CHECK(read_all(la[0], reply, 4) == 0);
	CHECK(!memcmp(reply, "ACK!", 4));
	close(la[0]);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	CHECK(a.rc == 0 && b.rc == 0);
	CHECK(a.st.raw_tx == n && b.st.raw_rx == n);
	CHECK(b.st.raw_tx == 4 && a.st.raw_rx == 4);
	CHECK(a.st.payload_tx < n); /* the zero halves shrink */
	chan_close(a.c);
	chan_close(b.c);
	close(la[1]);
	close(lb[1]);
	free(data);
	free(got);
}

static void test_wrong_stream(void)
{
	int wire[2], l[2];
	struct side a = {0};
	ferr_t e = {0};
	struct chan *peer;

	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, wire) == 0);
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, l) == 0);
	a.c = chan_fd_new(wire[0], "a", &e);
	peer = chan_fd_new(wire[1], "peer", &e);
	a.sk = l[1];
	a.o = (struct relay_opts){.stream = 1, .idle_ms = 5000};
	frame_send(peer, WIRE_STREAM_DATA, 7, 0, "\0\0\0\1x", 5);
	run_side(&a);
	CHECK(a.rc < 0 && a.err.code == FX_INTEGRITY);
	chan_close(a.c);
	chan_close(peer);
	close(l[0]);
	close(l[1]);
}

static void test_modes(void)
{
	enum mig_mode m;
	ferr_t e = {0};

	CHECK(mig_mode_parse("auto", &m, &e) == 0 && m == MIG_AUTO);
	CHECK(mig_mode_parse("stop-copy", &m, &e) == 0 && m == MIG_STOP_COPY);
	CHECK(mig_mode_parse("post-copy", &m, &e) == 0 && m == MIG_POST_COPY);
	CHECK(mig_mode_parse("fast", &m, &e) < 0 && e.code == FX_USAGE);
	CHECK(!strcmp(mig_mode_str(MIG_PRE_COPY), "pre-copy"));
}

int main(void)
{
	RUN(test_both_ways);
	RUN(test_wrong_stream);
	RUN(test_modes);
	UNIT_DONE();
}
