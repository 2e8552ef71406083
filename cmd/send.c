/* ferry send: stream an image set to a host running `ferry serve` (transport/xfer.h). */
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "cmd/opts.h"
#include "lib/json.h"
#include "lib/util.h"
#include "transport/xfer.h"

struct send_args {
	struct send_opts o;
	const char *to;
	bool json;
};

static const struct opt send_opts[] = {
    OPTS_PEER(struct send_args, to, o),
    OPTS_JSON(struct send_args, json),
    {.name = "no-compress",
     .type = OPT_CLEAR,
     .off = offsetof(struct send_args, o.compress),
     .help = "send raw bytes (no LZ4)"},
    {.name = "retry-for",
     .type = OPT_INT,
     .off = offsetof(struct send_args, o.retry_for_s),
     .arg = "SECONDS",
     .min = 0,
     .max = INT_MAX,
     .flags = OPT_SHOW_DEFAULT,
     .help = "keep reconnecting after a drop this long"},
    {.name = "timeout",
     .type = OPT_INT,
     .off = offsetof(struct send_args, o.timeout_ms),
     .arg = "SECONDS",
     .min = 1,
     .max = INT_MAX / 1000,
     .scale = 1000,
     .flags = OPT_SHOW_DEFAULT,
     .help = "a connection stalled this long counts as dropped"},
    {0},
};

static const struct cmd_spec send_spec = {
    .name = "send",
    .args = "DIR",
    .min_args = 1,
    .max_args = 1,
    .about = "Stream the image set in DIR (a directory with manifest.ferry) to a host\n"
	     "running 'ferry serve'. Every file is checked against the manifest while it\n"
	     "is read; the receiver checks it again and makes the set visible only when\n"
	     "all of it arrived intact. A dropped connection is resumed where the\n"
	     "receiver durably got to; so is a later 'ferry send' of the same set.\n",
    .notes = "Exit codes: 0 ok, 3 no image set, 5 integrity (file differs from manifest),\n"
	     "            6 connection/TLS failure, 8 receiver's disk full.\n",
    .opts = send_opts,
};

struct view {
	bool tty;
	uint64_t last_ns;
};

static void progress(const struct xfer_stats *st, bool final, void *arg)
{
	struct view *v = arg;
	uint64_t todo = st->total_bytes, done = st->skipped_bytes + st->sent_bytes;
	double rate = st->seconds > 0 ? st->raw_bytes / st->seconds : 0;
	double ratio = st->payload_bytes ? (double)done / st->payload_bytes : 1.0;
	double left = rate > 0 && todo > done ? (todo - done) / rate : 0;

	if (done > todo)
		done = todo;
	int width = 30, fill = todo ? (int)(width * (double)done / todo) : width;
	char b1[32], b2[32];

	if (!v->tty)
		return;
	if (fill > width)
		fill = width;
	fprintf(stderr, "\r[%.*s%*s] %s/%s %6.1f MB/s ratio %.2f ETA %3.0fs ", fill,
		"##############################", width - fill, "", fmt_bytes(done, b1, sizeof(b1)),
		fmt_bytes(todo, b2, sizeof(b2)), rate / 1e6, ratio, left);
	if (final)
		fputc('\n', stderr);
}

static void summary(const struct xfer_stats *st, bool json)
{
	double ratio = st->payload_bytes ? (double)st->raw_bytes / st->payload_bytes : 1.0;
	double mbps = st->seconds > 0 ? st->raw_bytes / st->seconds / 1e6 : 0;
	char b1[32], b2[32];

	if (json) {
		struct jw w;
		jw_init(&w, stdout);
		jw_obj_begin(&w, NULL);
		jw_str(&w, "set_id", st->set_id);
		jw_str(&w, "tenant", st->tenant);
		jw_uint(&w, "files", st->n_files);
		jw_uint(&w, "total_bytes", st->total_bytes);
		jw_uint(&w, "raw_bytes", st->raw_bytes);
		jw_uint(&w, "resumed_bytes", st->skipped_bytes);
		jw_uint(&w, "payload_bytes", st->payload_bytes);
		jw_uint(&w, "wire_bytes", st->wire_bytes);
		jw_uint(&w, "acked_bytes", st->acked_bytes);
		jw_double(&w, "ratio", ratio);
		jw_double(&w, "seconds", st->seconds);
		jw_double(&w, "mbps", mbps);
		jw_uint(&w, "reconnects", st->reconnects);
		jw_bool(&w, "already_present", st->have_set);
		jw_obj_end(&w);
		jw_finish(&w);
		return;
	}
	if (st->have_set) {
		printf("set %s (%s) is already on the receiver: nothing sent\n", st->set_id,
		       st->tenant);
		return;
	}
	printf("sent set %s (%s): %u files, %s raw, %s on the wire, ratio %.2f, %.1f MB/s, "
	       "%.2f s",
	       st->set_id, st->tenant, st->n_files, fmt_bytes(st->raw_bytes, b1, sizeof(b1)),
	       fmt_bytes(st->wire_bytes, b2, sizeof(b2)), ratio, mbps, st->seconds);
	if (st->skipped_bytes)
		printf(", resumed after %s", fmt_bytes(st->skipped_bytes, b1, sizeof(b1)));
	if (st->reconnects)
		printf(", %u reconnect(s)", st->reconnects);
	printf("\n");
}

int cmd_send(int argc, char **argv, const struct global_opts *g)
{
	struct send_args a = {
	    .o = {.compress = true, .retry_for_s = 60, .timeout_ms = 30000, .threads = 2}};
	struct view v = {0};
	struct xfer_stats st;
	char host[256];
	ferr_t err = {0};
	int pos, rc;

	(void)g;
	if ((rc = opts_parse(&send_spec, &a, argc, argv, &pos)) != OPTS_RUN)
		return rc;
	a.o.dir = argv[pos];
	if (parse_hostport(a.to, host, sizeof(host), &a.o.port, &err) < 0)
		return cmd_report("send", &err);
	a.o.host = host;
	v.tty = !a.json && isatty(2);
	a.o.progress = progress;
	a.o.progress_arg = &v;
	if (xfer_send(&a.o, &st, &err) < 0)
		return cmd_report("send", &err);
	summary(&st, a.json);
	return FX_OK;
}
