/* Test-only tool for the transport tests (never installed):
 *   wiretool mkset DIR [TENANT]     write DIR/manifest.ferry for the files in DIR
 *   wiretool evil-offer HOST:PORT TLSDIR NAME PEER KIND
 *       connect like `ferry send` and misbehave; KIND is one of
 *       dotdot | absolute | nul   a manifest naming ../x, /etc/x or a\0x
 *       oversize                  a frame header announcing 64 MiB
 *       badversion                a frame with an unknown frame version
 *       outoforder                FILE_END before any OFFER
 *       truncate                  half a DATA frame, then close
 *       future                    HELLO speaking only protocol versions 2..9
 *       newer                     HELLO speaking 1..9: must get version 1 back
 *   Prints the receiver's answer; exit 0 when the receiver refused with an
 *   ERROR frame (or closed the connection for the raw cases). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transport/chan_sock.h"
#include "transport/chan_tls.h"
#include "transport/frame.h"
#include "proto/manifest.h"
#include "transport/session.h"
#include "lib/util.h"
#include "transport/wire.h"

static int mkset(const char *dir, const char *tenant)
{
	ferr_t e = {0};
	manifest_t *m = manifest_new(tenant, FERRY__TENANT_KIND__TENANT_PROCTREE);

	if (!m || manifest_add_dir(m, dir, NULL, &e) < 0 || manifest_write(dir, m, &e) < 0) {
		fprintf(stderr, "mkset: %s\n", e.msg);
		return 1;
	}
	printf("%s\n", m->set_id);
	manifest_free(m);
	return 0;
}

/* A manifest with one file whose name is raw bytes (may hold a NUL). */
static int evil_manifest(const char *name, size_t nlen, uint8_t **buf, size_t *len, char *id)
{
	manifest_t *m = manifest_new("evil", FERRY__TENANT_KIND__TENANT_PROCTREE);
	Ferry__ImageFile *f = calloc(1, sizeof(*f));
	ferr_t e = {0};
	static uint8_t sha[32];

	ferry__image_file__init(f);
	f->name = malloc(nlen + 1);
	if (memchr(name, 0, nlen))
		memset(f->name, 'z', nlen); /* placeholder, replaced after encoding */
	else
		memcpy(f->name, name, nlen);
	f->name[nlen] = 0;
	f->size = 1;
	f->sha256.data = malloc(32);
	memcpy(f->sha256.data, sha, 32);
	f->sha256.len = 32;
	m->files = malloc(sizeof(*m->files));
	m->files[0] = f;
	m->n_files = 1;
	strcpy(id, m->set_id);
	if (manifest_encode(m, buf, len, &e) < 0)
		return -1;
	if (memchr(name, 0, nlen)) {
		/* protobuf-c packs strings up to their NUL: encode a placeholder of
		 * the same length, then overwrite it with the real bytes */
		uint8_t *p = memmem(*buf, *len, f->name, nlen);
		if (!p)
			return -1;
		memcpy(p, name, nlen);
	}
	manifest_free(m);
	return 0;
}

static int answer(struct chan *c)
{
	struct frame_buf fb = {0};
	ferr_t e = {0};
	int ret = 1;

	if (frame_recv(c, &fb, &e) < 0) {
		printf("connection ended: %s\n", e.msg);
		ret = 0;
	} else if (fb.h.type == WIRE_ERROR) {
		session_peer_error(&fb, "receiver", &e);
		printf("refused: %s\n", e.msg);
		ret = 0;
	} else {
		printf("unexpected answer: %s\n", wire_type_name(fb.h.type));
	}
	frame_buf_free(&fb);
	return ret;
}

/* A HELLO from a ferry of another protocol range. */
static int hello_versions(struct chan *c, uint32_t min, uint32_t max)
{
	Ferry__Wire__Hello h = FERRY__WIRE__HELLO__INIT;
	Ferry__Wire__Hello *r = NULL;
	struct frame_buf fb = {0};
	ferr_t e = {0};
	int ret = 1;

	h.min_version = min;
	h.max_version = max;
	h.host_name = "future";
	frame_send_pb(c, WIRE_HELLO, &h.base);
	chan_flush(c);
	if (frame_recv(c, &fb, &e) < 0) {
		printf("connection ended: %s\n", e.msg);
	} else if (fb.h.type == WIRE_ERROR) {
		session_peer_error(&fb, "receiver", &e);
		printf("refused: %s\n", e.msg);
		ret = 0;
	} else if ((r = wire_unpack(&ferry__wire__hello__descriptor, fb.data, fb.h.len, &e))) {
		printf("server chose protocol version %u\n", r->chosen_version);
		ret = r->chosen_version == WIRE_PROTO_MAX ? 0 : 1;
	}
	wire_free(r);
	frame_buf_free(&fb);
	return ret;
}

static int evil(const char *to, const char *tls_dir, const char *name, const char *peer,
		const char *kind)
{
	char host[256], id[65];
	uint16_t port;
	ferr_t e = {0};
	struct tls_ctx *t;
	struct chan *c;
	struct session_info si;
	uint8_t *mb;
	size_t ml;

	if (parse_hostport(to, host, sizeof(host), &port, &e) < 0 ||
	    !(t = tls_ctx_new(tls_dir, name, false, &e)) ||
	    !(c = chan_tcp_connect(host, port, 5000, &e)) ||
	    !(c = chan_tls_client(c, t, peer, 10000, &e))) {
		fprintf(stderr, "wiretool: %s\n", e.msg);
		return 2;
	}
	if (!strcmp(kind, "future") || !strcmp(kind, "newer")) {
		int r = hello_versions(c, !strcmp(kind, "future") ? WIRE_PROTO_MAX + 1 : 1, 9);
		chan_close(c);
		tls_ctx_free(t);
		return r;
	}
	if (session_hello_client(c, name, &si, &e) < 0) {
		fprintf(stderr, "wiretool: %s\n", e.msg);
		return 2;
	}
	if (!strcmp(kind, "dotdot") || !strcmp(kind, "absolute") || !strcmp(kind, "nul")) {
		const char *n = !strcmp(kind, "dotdot")	    ? "../x"
				: !strcmp(kind, "absolute") ? "/tmp/x"
							    : "a\0/../../x";
		size_t nl = !strcmp(kind, "nul") ? 10 : strlen(n);
		Ferry__Wire__Offer of = FERRY__WIRE__OFFER__INIT;
		if (evil_manifest(n, nl, &mb, &ml, id) < 0)
			return 2;
		of.set_id = id;
		of.manifest.data = mb;
		of.manifest.len = ml;
		frame_send_pb(c, WIRE_OFFER, &of.base);
		free(mb);
	} else if (!strcmp(kind, "oversize")) {
		struct frame_hdr h = {FRAME_VERSION, WIRE_OFFER, 0, 64U << 20, 0};
		uint8_t raw[FRAME_HDR_LEN];
		frame_hdr_encode(&h, raw);
		chan_write_all(c, raw, sizeof(raw));
	} else if (!strcmp(kind, "badversion")) {
		struct frame_hdr h = {9, WIRE_OFFER, 0, 0, 0};
		uint8_t raw[FRAME_HDR_LEN];
		frame_hdr_encode(&h, raw);
		chan_write_all(c, raw, sizeof(raw));
	} else if (!strcmp(kind, "outoforder")) {
		Ferry__Wire__FileEnd fe = FERRY__WIRE__FILE_END__INIT;
		frame_send_pb(c, WIRE_FILE_END, &fe.base);
	} else if (!strcmp(kind, "truncate")) {
		struct frame_hdr h = {FRAME_VERSION, WIRE_OFFER, 0, 1000, 0};
		uint8_t raw[FRAME_HDR_LEN + 10] = {0};
		frame_hdr_encode(&h, raw);
		chan_write_all(c, raw, sizeof(raw));
		chan_shutdown(c);
		chan_close(c);
		printf("sent a truncated frame and closed\n");
		tls_ctx_free(t);
		return 0;
	} else {
		fprintf(stderr, "wiretool: unknown kind %s\n", kind);
		return 2;
	}
	chan_flush(c);
	int r = answer(c);
	chan_close(c);
	tls_ctx_free(t);
	return r;
}

int main(int argc, char **argv)
{
	if (argc >= 3 && !strcmp(argv[1], "mkset"))
		return mkset(argv[2], argc > 3 ? argv[3] : "test");
	if (argc == 7 && !strcmp(argv[1], "evil-offer"))
		return evil(argv[2], argv[3], argv[4], argv[5], argv[6]);
	fprintf(stderr, "usage: see the comment at the top of tests/tools/wiretool.c\n");
	return 2;
}
