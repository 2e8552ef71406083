/* ferry send: stream an image set to a host running `ferry serve` (transport/xfer.h). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "lib/json.h"
#include "lib/util.h"
#include "transport/xfer.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: ferry send DIR --to HOST:PORT --tls DIR --name NAME [--peer NAME]\n"
		"                  [--json] [--no-compress] [--retry-for SECONDS] [--timeout "
		"SECONDS]\n\n"
		"Stream the image set in DIR (a directory with manifest.ferry) to a host\n"
		"running 'ferry serve'. Every file is checked against the manifest while it\n"
		"is read; the receiver checks it again and makes the set visible only when\n"
		"all of it arrived intact. A dropped connection is resumed where the\n"
		"receiver durably got to; so is a later 'ferry send' of the same set.\n\n"
		"  --to HOST:PORT        the receiver\n"
		"  --tls DIR --name NAME CA DIR/ca.pem, identity DIR/NAME.pem + DIR/NAME.key\n"
		"  --peer NAME           the name in the receiver's certificate (default: HOST)\n"
		"  --no-compress         send raw bytes (no LZ4)\n"
		"  --retry-for SECONDS   keep reconnecting after a drop this long (default 60)\n"
		"  --timeout SECONDS     a connection stalled this long counts as dropped\n"
		"                        (default 30)\n"
		"  --json                print the summary as JSON\n\n"
		"Exit codes: 0 ok, 3 no image set, 5 integrity (file differs from manifest),\n"
		"            6 connection/TLS failure, 8 receiver's disk full.\n");
}

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
	static const struct option opts[] = {
	    {"to", required_argument, NULL, 'o'},
	    {"tls", required_argument, NULL, 't'},
	    {"name", required_argument, NULL, 'n'},
	    {"peer", required_argument, NULL, 'p'},
	    {"json", no_argument, NULL, 'j'},
	    {"no-compress", no_argument, NULL, 'z'},
	    {"retry-for", required_argument, NULL, 'r'},
	    {"timeout", required_argument, NULL, 'T'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct send_opts o = {
	    .compress = true, .retry_for_s = 60, .timeout_ms = 30000, .threads = 2};
	struct view v = {0};
	struct xfer_stats st;
	const char *to = NULL;
	char host[256];
	bool json = false;
	ferr_t err = {0};
	int c;

	(void)g;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'o':
			to = optarg;
			break;
		case 't':
			o.tls_dir = optarg;
			break;
		case 'n':
			o.name = optarg;
			break;
		case 'p':
			o.peer = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 'z':
			o.compress = false;
			break;
		case 'r':
			o.retry_for_s = atoi(optarg);
			break;
		case 'T':
			o.timeout_ms = atoi(optarg) * 1000;
			break;
		case 'h':
			usage(stdout);
			return FX_OK;
		default:
			usage(stderr);
			return FX_USAGE;
		}
	}
	if (optind + 1 != argc || !to || !o.tls_dir || !o.name || o.retry_for_s < 0 ||
	    o.timeout_ms < 1000) {
		usage(stderr);
		return FX_USAGE;
	}
	o.dir = argv[optind];
	if (parse_hostport(to, host, sizeof(host), &o.port, &err) < 0)
		return cmd_report("send", &err);
	o.host = host;
	v.tty = !json && isatty(2);
	o.progress = progress;
	o.progress_arg = &v;
	if (xfer_send(&o, &st, &err) < 0)
		return cmd_report("send", &err);
	summary(&st, json);
	return FX_OK;
}
