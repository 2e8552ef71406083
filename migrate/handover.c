/* What both sides of a migration share (handover.h): the step frames, and
 * where a host's agent listens. */
#include "migrate/handover.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/fsutil.h"
#include "lib/util.h"
#include "transport/session.h"
#include "transport/wire.h"

#define AGENT_FILE "agent.addr"

int mig_send_step(struct chan *c, uint8_t t, const Ferry__Wire__MigrateStep *m)
{
	Ferry__Wire__MigrateStep empty = FERRY__WIRE__MIGRATE_STEP__INIT;

	frame_send_pb(c, t, m ? &m->base : &empty.base);
	return chan_flush(c);
}

int mig_recv(struct chan *c, struct frame_buf *fb, uint8_t want, const char *waiting,
	     Ferry__Wire__MigrateStep **step, ferr_t *err)
{
	if (frame_recv(c, fb, err) < 0)
		return ferr_wrap(err, "waiting for %s from %s", waiting, chan_peer(c));
	if (fb->h.type == WIRE_ERROR)
		return session_peer_error(fb, chan_peer(c), err);
	if (fb->h.type != want)
		return session_unexpected(fb, chan_peer(c), waiting, err);
	if (step) {
		*step =
		    wire_unpack(&ferry__wire__migrate_step__descriptor, fb->data, fb->h.len, err);
		if (!*step)
			return -1;
	}
	return 0;
}

/* ---- where the agent listens ---- */

int hq_record_agent(const char *state_dir, const char *host, uint16_t port, ferr_t *err)
{
	char p[PATH_MAX], line[320];
	int n;

	if (xsnprintf(p, sizeof(p), err, "%s/" AGENT_FILE, state_dir) < 0)
		return -1;
	n = snprintf(line, sizeof(line), strchr(host, ':') ? "[%s]:%u\n" : "%s:%u\n", host, port);
	return fs_write_atomic(p, line, (size_t)n, 0600, err);
}

void hq_forget_agent(const char *state_dir)
{
	char p[PATH_MAX];

	if (xsnprintf(p, sizeof(p), NULL, "%s/" AGENT_FILE, state_dir) == 0)
		unlink(p);
}

static bool wildcard_or_loopback(const char *h)
{
	return !*h || !strcmp(h, "0.0.0.0") || !strcmp(h, "::") || !strncmp(h, "127.", 4) ||
	       !strcmp(h, "::1") || !strcmp(h, "localhost");
}

void hq_fill_begin(Ferry__Wire__MigrateBegin *b, const char *state_dir, const char *explicit,
		   char *hostbuf, size_t len)
{
	char p[PATH_MAX], *buf = NULL;
	uint16_t port;

	if (explicit) {
		if (parse_hostport(explicit, hostbuf, len, &port, NULL) < 0)
			return;
	} else {
		if (xsnprintf(p, sizeof(p), NULL, "%s/" AGENT_FILE, state_dir) < 0 ||
		    fs_read_all(p, &buf, NULL, 4096, NULL) < 0)
			return; /* no agent here: the destination cannot ask */
		buf[strcspn(buf, "\n")] = '\0';
		int r = parse_hostport(buf, hostbuf, len, &port, NULL);
		free(buf);
		if (r < 0)
			return;
		if (wildcard_or_loopback(hostbuf))
			hostbuf[0] = '\0'; /* the destination uses the session's peer address */
	}
	b->has_source_agent_port = true;
	b->source_agent_port = port;
	b->source_agent_host = hostbuf[0] ? hostbuf : NULL;
}
