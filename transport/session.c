/* HELLO exchange and error frames. */
#include "transport/session.h"

#include <stdio.h>
#include <string.h>

#include "lib/version.h"
#include "transport/wire.h"

/* The requests `ferry serve` answers (agent/serve.c: dispatch): OFFER, and
 * MIGRATE_BEGIN, _RESOLVE, _PAGES, _QUERY (migrate/handover.h). */
static char *modes[] = {"send-set", "migrate", "resolve", "pages", "query"};

static int send_hello(struct chan *c, const char *my_name, uint32_t chosen)
{
	Ferry__Wire__Hello h = FERRY__WIRE__HELLO__INIT;

	h.min_version = WIRE_PROTO_MIN;
	h.max_version = WIRE_PROTO_MAX;
	h.has_lz4 = 1;
	h.lz4 = 1;
	h.n_modes = sizeof(modes) / sizeof(modes[0]);
	h.modes = modes;
	h.host_name = (char *)my_name;
	h.ferry_version = FERRY_VERSION;
	if (chosen) {
		h.has_chosen_version = 1;
		h.chosen_version = chosen;
	}
	return frame_send_pb(c, WIRE_HELLO, &h.base);
}

static int recv_hello(struct chan *c, const char *who, Ferry__Wire__Hello **out, ferr_t *err)
{
	struct frame_buf fb = {0};
	int ret = -1;

	if (frame_recv(c, &fb, err) < 0)
		goto out;
	if (fb.h.type == WIRE_ERROR) {
		session_peer_error(&fb, who, err);
		goto out;
	}
	if (fb.h.type != WIRE_HELLO) {
		session_unexpected(&fb, who, "HELLO", err);
		goto out;
	}
	*out = wire_unpack(&ferry__wire__hello__descriptor, fb.data, fb.h.len, err);
	ret = *out ? 0 : -1;
out:
	frame_buf_free(&fb);
	return ret;
}

static void fill_info(struct session_info *si, const Ferry__Wire__Hello *h)
{
	si->peer_lz4 = h->has_lz4 && h->lz4;
	snprintf(si->peer_name, sizeof(si->peer_name), "%s", h->host_name ? h->host_name : "");
	snprintf(si->peer_ferry, sizeof(si->peer_ferry), "%s",
		 h->ferry_version ? h->ferry_version : "");
}

int session_hello_client(struct chan *c, const char *my_name, struct session_info *si, ferr_t *err)
{
	Ferry__Wire__Hello *h = NULL;
	uint32_t v;

	if (send_hello(c, my_name, 0) < 0 || chan_flush(c) < 0)
		return chan_take_error(c, err);
	if (recv_hello(c, "server", &h, err) < 0)
		return -1;
	fill_info(si, h);
	/* the server picked; still check it lies in our range */
	if (!h->has_chosen_version ||
	    wire_negotiate(WIRE_PROTO_MIN, WIRE_PROTO_MAX, h->chosen_version, h->chosen_version, &v,
			   err) < 0) {
		if (!h->has_chosen_version)
			ferr_set(err, FX_PEER, "the server did not choose a protocol version");
		wire_free(h);
		return -1;
	}
	si->version = v;
	wire_free(h);
	return 0;
}

int session_hello_server(struct chan *c, const char *my_name, struct session_info *si, ferr_t *err)
{
	Ferry__Wire__Hello *h = NULL;
	uint32_t v;

	if (recv_hello(c, "client", &h, err) < 0)
		return -1;
	fill_info(si, h);
	if (wire_negotiate(WIRE_PROTO_MIN, WIRE_PROTO_MAX, h->min_version, h->max_version, &v,
			   err) < 0) {
		wire_free(h);
		session_send_error(c, err);
		return -1;
	}
	wire_free(h);
	si->version = v;
	if (send_hello(c, my_name, v) < 0 || chan_flush(c) < 0)
		return chan_take_error(c, err);
	return 0;
}

void session_send_error(struct chan *c, const ferr_t *e)
{
	Ferry__Wire__Error m = FERRY__WIRE__ERROR__INIT;

	m.code = (uint32_t)(e->code ? e->code : FX_FAIL);
	m.text = (char *)e->msg;
	frame_send_pb(c, WIRE_ERROR, &m.base);
	chan_flush(c);
}

int session_peer_error(const struct frame_buf *fb, const char *who, ferr_t *err)
{
	Ferry__Wire__Error *m =
	    wire_unpack(&ferry__wire__error__descriptor, fb->data, fb->h.len, err);
	int code;

	if (!m)
		return -1;
	code = (int)m->code;
	if (code <= 0 || code > FX_NOSPACE)
		code = FX_FAIL;
	if (code == FX_NOSPACE)
		ferr_set(err, code, "%s: disk full: %s (free space there, then send again)", who,
			 m->text);
	else
		ferr_set(err, code, "%s: %s", who, m->text);
	wire_free(m);
	return -1;
}

int session_unexpected(const struct frame_buf *fb, const char *who, const char *waiting,
		       ferr_t *err)
{
	return ferr_set(err, FX_INTEGRITY,
			"protocol violation: %s sent %s (type %u) while we "
			"waited for %s",
			who, wire_type_name(fb->h.type), fb->h.type, waiting);
}
