/* Test-only tool for the transport tests (never installed):
 *   wiretool mkset DIR [TENANT]     write DIR/manifest.ferry for the files in DIR
 *   wiretool forge SRC DIR          the same for DIR, under the set id of SRC's
 *                                   manifest (a set posing as another)
 *   wiretool evil-offer HOST:PORT TLSDIR NAME PEER KIND
 *       connect like `ferry send` and misbehave; KIND is one of
 *       dotdot | absolute | nul   a manifest naming ../x, /etc/x or a\0x
 *       manyargv                  a manifest with 2M empty argv entries
 *       oversize                  a frame header announcing 64 MiB
 *       badversion                a frame with an unknown frame version
 *       outoforder                FILE_END before any OFFER
 *       truncate                  half a DATA frame, then close
 *       future                    HELLO speaking only protocol versions 2..9
 *       newer                     HELLO speaking 1..9: must get version 1 back
 *   Prints the receiver's answer; exit 0 when the receiver refused with an
 *   ERROR frame (or closed the connection for the raw cases).
 *   wiretool hold HOST:PORT N SECONDS idle|trickle [SRC]
 *       open N TCP connections (from address SRC) without a certificate and
 *       hold them: idle sends nothing, trickle sends a real ClientHello one
 *       byte a second; prints when the receiver closed each, "open" if not
 *   wiretool mig HOST:PORT TLSDIR NAME PEER begin|resolve|pages ID
 *       a migration request for migration ID (begin: a container "mig-ID"
 *       without root; resolve: commit); prints the first answer
 *   wiretool begin HOST:PORT TLSDIR NAME PEER ID [KEY=VALUE...]
 *       a crafted MIGRATE_BEGIN for migration ID; keys: tenant (default
 *       mig-ID), kind (container|proctree|vm), mode (stop|post), rootfs, addr,
 *       host_if, mac (the host side's MAC, aa:bb:..). With files=DIR, after ACCEPT: DIR's files and
 * a manifest of them describing the tenant as BEGIN did, except for the keys mtenant, mkind,
 * mrootfs, maddr; then RESTORE. Prints the first refusal
 *       ("refused: ..."), or "accepted" / "answer: frame type N"
 *   wiretool query HOST:PORT TLSDIR NAME PEER ID
 *       the in-doubt query for migration ID; prints the verdict or refusal
 *   wiretool hookcred
 *       the post-copy action socket against a local user (uid 65534): its
 *       post-dump is refused by the listener's check, and the action script
 *       does not speak to a listener of that user; exit 0 when both hold
 *   wiretool atomic DIR
 *       an atomic write (lib/fsutil.h) whose temporary name was taken by a
 *       symbolic link to DIR/victim: exit 0 when victim is untouched
 *   wiretool inroot ROOT
 *       prepare ROOT for a container's restore (its console log, which ferry
 *       creates as root inside the tenant's root); prints the outcome
 *   wiretool hello HOST:PORT TLSDIR NAME PEER MAX_MS
 *       handshake and HELLO like `ferry send`; exit 0 when done in MAX_MS */
#include <arpa/inet.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
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
#include "migrate/handover.h"
#include "migrate/migrate_files.h"
#include "criu/hook.h"
#include "lib/fsutil.h"
#include "tenant/container.h"
#include <stddef.h>
#include <sys/un.h>
#include <sys/wait.h>

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

static int forge(const char *src, const char *dir)
{
	ferr_t e = {0};
	manifest_t *orig = NULL, *m = manifest_new("forged", FERRY__TENANT_KIND__TENANT_PROCTREE);

	if (!m || manifest_read(src, &orig, &e) < 0 || manifest_add_dir(m, dir, NULL, &e) < 0) {
		fprintf(stderr, "forge: %s\n", e.msg);
		return 1;
	}
	free(m->set_id);
	m->set_id = strdup(orig->set_id);
	if (manifest_write(dir, m, &e) < 0) {
		fprintf(stderr, "forge: %s\n", e.msg);
		return 1;
	}
	printf("%s\n", m->set_id);
	manifest_free(orig);
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
	if (!strcmp(kind, "manyargv")) {
		Ferry__Wire__Offer of = FERRY__WIRE__OFFER__INIT;
		size_t n = 2000000, big;
		uint8_t *b;
		if (evil_manifest("x", 1, &mb, &ml, id) < 0 || !(b = malloc(ml + 2 * n)))
			return 2;
		memcpy(b, mb, ml);
		for (size_t i = 0; i < n; i++) { /* field 5 (argv), length 0 */
			b[ml + 2 * i] = 0x2a;
			b[ml + 2 * i + 1] = 0;
		}
		big = ml + 2 * n;
		uint32_t plen = (uint32_t)(big - MANIFEST_HDR_LEN);
		b[8] = (uint8_t)(plen >> 24), b[9] = (uint8_t)(plen >> 16);
		b[10] = (uint8_t)(plen >> 8), b[11] = (uint8_t)plen;
		of.set_id = id;
		of.manifest.data = b;
		of.manifest.len = big;
		frame_send_pb(c, WIRE_OFFER, &of.base);
		free(mb);
		free(b);
	} else if (!strcmp(kind, "dotdot") || !strcmp(kind, "absolute") || !strcmp(kind, "nul")) {
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

/* The bytes of a TLS 1.3 ClientHello, as OpenSSL writes it. */
static int client_hello(uint8_t *buf, size_t size, size_t *len)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	SSL *ssl = ctx ? SSL_new(ctx) : NULL;
	BIO *rb = BIO_new(BIO_s_mem()), *wb = BIO_new(BIO_s_mem());
	int n;

	if (!ssl || !rb || !wb)
		return -1;
	SSL_set_bio(ssl, rb, wb);
	SSL_connect(ssl); /* wants the server's answer: the hello is in wb */
	n = BIO_read(wb, buf, (int)size);
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	if (n <= 0)
		return -1;
	*len = (size_t)n;
	return 0;
}

static int raw_connect(const char *host, uint16_t port, const char *src)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		return -1;
	if (src) {
		struct sockaddr_in me = {.sin_family = AF_INET};
		if (inet_pton(AF_INET, src, &me.sin_addr) != 1 ||
		    bind(fd, (struct sockaddr *)&me, sizeof(me)) < 0)
			return -1;
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Hold n connections for secs seconds; print when the receiver closed each. */
static int hold(const char *to, int n, int secs, const char *mode, const char *src)
{
	char host[256];
	uint16_t port;
	uint8_t ch[4096];
	size_t chl = 0, sent = 0;
	int fds[256];
	double closed[256];
	uint64_t t0 = now_ns();
	ferr_t e = {0};
	bool trickle = !strcmp(mode, "trickle");

	if (n > 256 || parse_hostport(to, host, sizeof(host), &port, &e) < 0 ||
	    (trickle && client_hello(ch, sizeof(ch), &chl) < 0))
		return 2;
	for (int i = 0; i < n; i++) {
		fds[i] = raw_connect(host, port, src);
		closed[i] = fds[i] < 0 ? 0 : -1;
	}
	while (ms_since(t0) < secs * 1000.0) {
		for (int i = 0; i < n; i++) {
			struct pollfd p = {.fd = fds[i], .events = POLLIN};
			char b[256];
			if (closed[i] >= 0 || poll(&p, 1, 0) <= 0)
				continue;
			if (recv(fds[i], b, sizeof(b), MSG_DONTWAIT) <= 0)
				closed[i] = ms_since(t0) / 1000;
		}
		for (int i = 0; trickle && sent < chl && i < n; i++)
			if (closed[i] < 0)
				send(fds[i], ch + sent, 1, MSG_NOSIGNAL);
		sent++;
		usleep(trickle ? 1000000 : 100000);
	}
	for (int i = 0; i < n; i++) {
		if (closed[i] < 0)
			printf("connection %d: open\n", i);
		else
			printf("connection %d: closed after %.1f s\n", i, closed[i]);
	}
	return 0;
}

static int hello(const char *to, const char *tls_dir, const char *name, const char *peer,
		 int max_ms)
{
	char host[256];
	uint16_t port;
	ferr_t e = {0};
	struct tls_ctx *t;
	struct chan *c;
	struct session_info si;
	uint64_t t0 = now_ns();
	double ms;

	if (parse_hostport(to, host, sizeof(host), &port, &e) < 0 ||
	    !(t = tls_ctx_new(tls_dir, name, false, &e)) ||
	    !(c = chan_tcp_connect(host, port, 5000, &e)) ||
	    !(c = chan_tls_client(c, t, peer, 30000, &e)) ||
	    session_hello_client(c, name, &si, &e) < 0) {
		fprintf(stderr, "wiretool: %s (after %.0f ms)\n", e.msg, ms_since(t0));
		return 1;
	}
	ms = ms_since(t0);
	printf("hello answered in %.0f ms\n", ms);
	chan_close(c);
	tls_ctx_free(t);
	return ms <= max_ms ? 0 : 1;
}

static int mig(const char *to, const char *tls_dir, const char *name, const char *peer,
	       const char *what, const char *id)
{
	char host[256], tenant[80];
	uint16_t port;
	ferr_t e = {0};
	struct tls_ctx *t;
	struct chan *c;
	struct session_info si;
	struct frame_buf fb = {0};

	if (parse_hostport(to, host, sizeof(host), &port, &e) < 0 ||
	    !(t = tls_ctx_new(tls_dir, name, false, &e)) ||
	    !(c = chan_tcp_connect(host, port, 5000, &e)) ||
	    !(c = chan_tls_client(c, t, peer, 30000, &e)) ||
	    session_hello_client(c, name, &si, &e) < 0) {
		fprintf(stderr, "wiretool: %s\n", e.msg);
		return 2;
	}
	if (!strcmp(what, "begin")) {
		Ferry__Wire__MigrateBegin b = FERRY__WIRE__MIGRATE_BEGIN__INIT;
		snprintf(tenant, sizeof(tenant), "mig-%.60s", id);
		b.migration_id = (char *)id;
		b.tenant = tenant;
		b.has_kind = 1;
		b.kind = FERRY__TENANT_KIND__TENANT_CONTAINER;
		b.has_mode = 1;
		b.mode = FERRY__WIRE__MIGRATION_MODE__MODE_STOP_COPY;
		frame_send_pb(c, MIG_REQ_BEGIN, &b.base);
	} else if (!strcmp(what, "resolve")) {
		Ferry__Wire__MigrateResolve r = FERRY__WIRE__MIGRATE_RESOLVE__INIT;
		r.migration_id = (char *)id;
		r.commit = 1;
		frame_send_pb(c, MIG_REQ_RESOLVE, &r.base);
	} else {
		Ferry__Wire__MigrateStep st = FERRY__WIRE__MIGRATE_STEP__INIT;
		st.migration_id = (char *)id;
		frame_send_pb(c, MIG_REQ_PAGES, &st.base);
	}
	chan_flush(c);
	if (frame_recv(c, &fb, &e) < 0) {
		printf("connection ended: %s\n", e.msg);
	} else if (fb.h.type == WIRE_ERROR) {
		session_peer_error(&fb, "receiver", &e);
		printf("refused: %s\n", e.msg);
	} else {
		printf("answer: frame type %u\n", fb.h.type);
	}
	frame_buf_free(&fb);
	chan_close(c);
	tls_ctx_free(t);
	return 0;
}

/* KEY=VALUE from argv, or def. */
static const char *kv(int argc, char **argv, const char *key, const char *def)
{
	size_t n = strlen(key);

	for (int i = 0; i < argc; i++)
		if (!strncmp(argv[i], key, n) && argv[i][n] == '=')
			return argv[i] + n + 1;
	return def;
}

static Ferry__TenantKind kind_of(const char *k)
{
	return !strcmp(k, "proctree") ? FERRY__TENANT_KIND__TENANT_PROCTREE
	       : !strcmp(k, "vm")     ? FERRY__TENANT_KIND__TENANT_VM
				      : FERRY__TENANT_KIND__TENANT_CONTAINER;
}

static struct chan *dial(const char *to, const char *tls_dir, const char *name, const char *peer,
			 struct tls_ctx **t, ferr_t *e)
{
	char host[256];
	uint16_t port;
	struct chan *c = NULL;
	struct session_info si;

	if (parse_hostport(to, host, sizeof(host), &port, e) < 0 ||
	    !(*t = tls_ctx_new(tls_dir, name, false, e)) ||
	    !(c = chan_tcp_connect(host, port, 5000, e)) ||
	    !(c = chan_tls_client(c, *t, peer, 30000, e)) ||
	    session_hello_client(c, name, &si, e) < 0)
		return NULL;
	return c;
}

/* The answer to what was sent: 0 refused (printed), 1 other. */
static int peer_answer(struct chan *c, uint8_t want)
{
	struct frame_buf fb = {0};
	ferr_t e = {0};
	int r = 1;

	if (frame_recv(c, &fb, &e) < 0) {
		printf("connection ended: %s\n", e.msg);
	} else if (fb.h.type == WIRE_ERROR) {
		session_peer_error(&fb, "receiver", &e);
		printf("refused: %s\n", e.msg);
		r = 0;
	} else if (fb.h.type == want) {
		r = 2;
	} else {
		printf("answer: frame type %u\n", fb.h.type);
	}
	frame_buf_free(&fb);
	return r;
}

/* The set a crafted source sends after ACCEPT: DIR's files, a manifest. */
static int send_set(struct chan *c, int argc, char **argv, const Ferry__Wire__MigrateBegin *b)
{
	const char *dir = kv(argc, argv, "files", NULL);
	manifest_t *m =
	    manifest_new(kv(argc, argv, "mtenant", b->tenant),
			 kind_of(kv(argc, argv, "mkind", kv(argc, argv, "kind", "container"))));
	const char *root = kv(argc, argv, "mrootfs", b->rootfs),
		   *addr = kv(argc, argv, "maddr", b->net_addr);
	uint64_t raw;
	ferr_t e = {0};

	if (root)
		manifest_set_str(&m->rootfs, root);
	if (addr && *addr) {
		m->net = calloc(1, sizeof(*m->net));
		ferry__net_config__init(m->net);
		manifest_set_str(&m->net->addr, addr);
		manifest_set_str(&m->net->host_if, kv(argc, argv, "host_if", "eth0"));
	}
	if (manifest_add_dir(m, dir, NULL, &e) < 0 || mig_files_send(c, dir, m, &raw, &e) < 0) {
		printf("wiretool: %s\n", e.msg);
		manifest_free(m);
		return 1;
	}
	manifest_free(m);
	mig_send_step(c, MIG_RESTORE, NULL);
	chan_flush(c);
	return 0;
}

static int begin(const char *to, const char *tls_dir, const char *name, const char *peer,
		 const char *id, int argc, char **argv)
{
	Ferry__Wire__MigrateBegin b = FERRY__WIRE__MIGRATE_BEGIN__INIT;
	char tenant[80];
	struct tls_ctx *t = NULL;
	ferr_t e = {0};
	struct chan *c = dial(to, tls_dir, name, peer, &t, &e);
	int r;

	if (!c) {
		fprintf(stderr, "wiretool: %s\n", e.msg);
		return 2;
	}
	snprintf(tenant, sizeof(tenant), "mig-%.60s", id);
	b.migration_id = (char *)id;
	b.tenant = (char *)kv(argc, argv, "tenant", tenant);
	b.has_kind = b.has_mode = 1;
	b.kind = kind_of(kv(argc, argv, "kind", "container"));
	b.mode = !strcmp(kv(argc, argv, "mode", "stop"), "post")
		     ? FERRY__WIRE__MIGRATION_MODE__MODE_POST_COPY
		     : FERRY__WIRE__MIGRATION_MODE__MODE_STOP_COPY;
	b.rootfs = (char *)kv(argc, argv, "rootfs", NULL);
	b.net_addr = (char *)kv(argc, argv, "addr", NULL);
	b.host_if = (char *)kv(argc, argv, "host_if", NULL);
	if (kv(argc, argv, "mac", NULL)) {
		static uint8_t mac[6];
		sscanf(kv(argc, argv, "mac", NULL), "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &mac[0],
		       &mac[1], &mac[2], &mac[3], &mac[4], &mac[5]);
		b.has_host_if_mac = 1;
		b.host_if_mac.data = mac;
		b.host_if_mac.len = 6;
	}
	frame_send_pb(c, MIG_REQ_BEGIN, &b.base);
	chan_flush(c);
	r = peer_answer(c, MIG_ACCEPT);
	if (r == 2 && kv(argc, argv, "files", NULL)) {
		if (send_set(c, argc, argv, &b) == 0)
			r = peer_answer(c, MIG_RESTORED);
		if (r == 2)
			printf("restored\n");
	} else if (r == 2) {
		printf("accepted\n");
	}
	chan_close(c);
	tls_ctx_free(t);
	return 0;
}

static int query(const char *to, const char *tls_dir, const char *name, const char *peer,
		 const char *id)
{
	Ferry__Wire__MigrateStep st = FERRY__WIRE__MIGRATE_STEP__INIT;
	struct tls_ctx *t = NULL;
	ferr_t e = {0};
	struct chan *c = dial(to, tls_dir, name, peer, &t, &e);
	struct frame_buf fb = {0};

	if (!c) {
		fprintf(stderr, "wiretool: %s\n", e.msg);
		return 2;
	}
	st.migration_id = (char *)id;
	frame_send_pb(c, MIG_REQ_QUERY, &st.base);
	chan_flush(c);
	if (frame_recv(c, &fb, &e) < 0) {
		printf("connection ended: %s\n", e.msg);
	} else if (fb.h.type == WIRE_ERROR) {
		session_peer_error(&fb, "receiver", &e);
		printf("refused: %s\n", e.msg);
	} else if (fb.h.type == MIG_VERDICT) {
		Ferry__Wire__MigrateVerdict *v =
		    wire_unpack(&ferry__wire__migrate_verdict__descriptor, fb.data, fb.h.len, &e);
		printf("verdict: %d\n", v ? (int)v->verdict : -1);
		wire_free(v);
	}
	frame_buf_free(&fb);
	chan_close(c);
	tls_ctx_free(t);
	return 0;
}

static int unix_sock(const char *name, bool listen_it, struct sockaddr_un *sa, socklen_t *len)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	memcpy(sa->sun_path + 1, name, strlen(name)); /* abstract */
	*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(name));
	if (fd >= 0 && listen_it &&
	    (bind(fd, (struct sockaddr *)sa, *len) < 0 || listen(fd, 4) < 0)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* A child as uid 65534: connect and send post-dump (connect), or listen
 * and report whether anything arrived (listen). */
static pid_t as_nobody(const char *name, bool listen_it, int ready[2])
{
	pid_t pid = fork();
	struct sockaddr_un sa;
	socklen_t len;
	char b[16];

	if (pid != 0)
		return pid;
	if (setgid(65534) < 0 || setuid(65534) < 0)
		_exit(3);
	int fd = unix_sock(name, listen_it, &sa, &len);
	if (!listen_it) {
		if (fd < 0 || connect(fd, (struct sockaddr *)&sa, len) < 0 ||
		    write(fd, "post-dump\n", 10) != 10)
			_exit(3);
		_exit(read(fd, b, sizeof(b)) > 1 && !strncmp(b, "ok", 2) ? 1 : 0);
	}
	if (write(ready[1], "x", 1) != 1 || fd < 0)
		_exit(3);
	int c = accept(fd, NULL, NULL);
	_exit(c >= 0 && read(c, b, sizeof(b)) > 0 ? 1 : 0);
}

static int hookcred(void)
{
	char name[64], env[80], x;
	struct sockaddr_un sa;
	socklen_t len;
	int st, lfd, fd, ready[2], bad = 0;
	pid_t pid;

	snprintf(name, sizeof(name), "ferry-hookcred-%d", (int)getpid());
	lfd = unix_sock(name, true, &sa, &len);
	if (lfd < 0 || pipe(ready) < 0)
		return 2;
	/* a local user's post-dump: the listener refuses it */
	pid = as_nobody(name, false, ready);
	fd = accept(lfd, NULL, NULL);
	if (fd >= 0 && criu_hook_peer_ok(fd)) {
		printf("a peer of uid 65534 passed the check\n");
		bad = 1;
		if (write(fd, "ok\n", 3) < 0)
			bad = 1;
	}
	close(fd);
	waitpid(pid, &st, 0);
	printf("local user's post-dump: %s\n", bad ? "accepted" : "refused");
	close(lfd);
	/* a listener of that user: the script does not speak to it */
	strcat(name, "-l");
	pid = as_nobody(name, true, ready);
	if (read(ready[0], &x, 1) != 1)
		return 2;
	usleep(100000);
	snprintf(env, sizeof(env), "@%s", name);
	setenv(CRIU_HOOK_SOCK_ENV, env, 1);
	setenv("CRTOOLS_SCRIPT_ACTION", "post-dump", 1);
	int r = criu_hook_run();
	waitpid(pid, &st, 0);
	printf("script towards a local user's listener: %s, it received %s\n",
	       r == CRIU_HOOK_FAIL ? "failed" : "answered",
	       WIFEXITED(st) && WEXITSTATUS(st) == 0 ? "nothing" : "post-dump");
	if (r != CRIU_HOOK_FAIL || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		bad = 1;
	return bad;
}

static int atomic(const char *dir)
{
	char victim[4096], path[4096], link[4200], *got = NULL;
	size_t n = 0;
	ferr_t e = {0};
	FILE *f;

	snprintf(victim, sizeof(victim), "%s/victim", dir);
	snprintf(path, sizeof(path), "%s/file", dir);
	snprintf(link, sizeof(link), "%s.tmp.%d.0", path, (int)getpid()); /* the first name */
	if (!(f = fopen(victim, "w")) || fputs("precious\n", f) < 0 || fclose(f) != 0 ||
	    symlink(victim, link) < 0)
		return 2;
	if (fs_write_atomic(path, "new\n", 4, 0644, &e) < 0) {
		printf("atomic write failed: %s\n", e.msg);
		return 1;
	}
	if (fs_read_all(victim, &got, &n, 100, &e) < 0 || strcmp(got, "precious\n")) {
		printf("the write followed the planted link\n");
		return 1;
	}
	free(got);
	if (fs_read_all(path, &got, &n, 100, &e) < 0 || strcmp(got, "new\n")) {
		printf("the file was not written\n");
		return 1;
	}
	free(got);
	printf("atomic write: link not followed, file written\n");
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "inroot")) {
		ferr_t e = {0};
		int r = container_prepare_restore(argv[2], &e);
		printf("%s\n", r < 0 ? e.msg : "console log ready");
		return r < 0 ? 1 : 0;
	}
	if (argc == 3 && !strcmp(argv[1], "atomic"))
		return atomic(argv[2]);
	if (argc == 2 && !strcmp(argv[1], "hookcred"))
		return hookcred();
	if (argc >= 7 && !strcmp(argv[1], "begin"))
		return begin(argv[2], argv[3], argv[4], argv[5], argv[6], argc - 7, argv + 7);
	if (argc == 7 && !strcmp(argv[1], "query"))
		return query(argv[2], argv[3], argv[4], argv[5], argv[6]);
	if (argc == 8 && !strcmp(argv[1], "mig"))
		return mig(argv[2], argv[3], argv[4], argv[5], argv[6], argv[7]);
	if ((argc == 6 || argc == 7) && !strcmp(argv[1], "hold"))
		return hold(argv[2], atoi(argv[3]), atoi(argv[4]), argv[5],
			    argc == 7 ? argv[6] : NULL);
	if (argc == 7 && !strcmp(argv[1], "hello"))
		return hello(argv[2], argv[3], argv[4], argv[5], atoi(argv[6]));
	if (argc == 4 && !strcmp(argv[1], "forge"))
		return forge(argv[2], argv[3]);
	if (argc >= 3 && !strcmp(argv[1], "mkset"))
		return mkset(argv[2], argc > 3 ? argv[3] : "test");
	if (argc == 7 && !strcmp(argv[1], "evil-offer"))
		return evil(argv[2], argv[3], argv[4], argv[5], argv[6]);
	fprintf(stderr, "usage: see the comment at the top of tests/tools/wiretool.c\n");
	return 2;
}
