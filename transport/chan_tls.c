/* TLS 1.3 with mutual authentication, as a chan layer over a socket layer. */
#define LOG_PREFIX "tls"
#include "transport/chan_tls.h"

#include <errno.h>
#include <limits.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>

#include "lib/log.h"
#include "lib/util.h"

struct tls_ctx {
	SSL_CTX *ctx;
	bool server;
	pthread_mutex_t lock; /* SSL_new against a new verify store */
	char ca[PATH_MAX], crl[PATH_MAX], crt[PATH_MAX], key[PATH_MAX];
	struct timespec crl_mtime; /* of the CRL loaded; 0 when none */
	struct timespec crt_mtime; /* of our certificate loaded */
};

struct chan_tls {
	struct chan c;
	SSL *ssl;
	char peer_cn[256];
	int timeout_ms;
};

static int ssl_fail(ferr_t *err, int code, const char *what)
{
	unsigned long e = ERR_get_error();
	char buf[256] = "";

	if (e)
		ERR_error_string_n(e, buf, sizeof(buf));
	ERR_clear_error();
	return ferr_set(err, code, "%s%s%s", what, buf[0] ? ": " : "", buf);
}

/* A private key others may read is not private: refuse it. */
static int key_private(const char *path, ferr_t *err)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return 0; /* loading it reports the error */
	if (st.st_mode & 077)
		return ferr_set(err, FX_USAGE,
				"%s is readable by group or others (mode %03o): a private key "
				"must be 0600 (chmod 600 %s)",
				path, (unsigned)(st.st_mode & 0777), path);
	return 0;
}

/* A verify store with the CA and, when there is one, the CRL (then every
 * peer certificate is checked against it: X509_V_FLAG_CRL_CHECK). */
static X509_STORE *new_store(const struct tls_ctx *t, bool with_crl, ferr_t *err)
{
	X509_STORE *st = X509_STORE_new();
	X509_LOOKUP *lk;

	if (!st || X509_STORE_load_file(st, t->ca) != 1) {
		X509_STORE_free(st);
		ssl_fail(err, FX_USAGE, "cannot load the CA certificate");
		return NULL;
	}
	if (!with_crl)
		return st;
	lk = X509_STORE_add_lookup(st, X509_LOOKUP_file());
	if (!lk || X509_load_crl_file(lk, t->crl, X509_FILETYPE_PEM) < 1) {
		X509_STORE_free(st);
		ssl_fail(err, FX_USAGE, "cannot load the certificate revocation list");
		return NULL;
	}
	X509_STORE_set_flags(st, X509_V_FLAG_CRL_CHECK);
	return st;
}

int tls_ctx_reload(struct tls_ctx *t, ferr_t *err)
{
	struct stat st;
	bool have = stat(t->crl, &st) == 0;
	struct timespec m = have ? st.st_mtim : (struct timespec){0};
	X509_STORE *store;

	if (m.tv_sec == t->crl_mtime.tv_sec && m.tv_nsec == t->crl_mtime.tv_nsec)
		return 0;
	store = new_store(t, have, err);
	if (!store) {
		t->crl_mtime = m; /* reported once per change; the old list stays */
		return ferr_wrap(err, "%s", have ? t->crl : t->ca);
	}
	pthread_mutex_lock(&t->lock);
	SSL_CTX_set1_verify_cert_store(t->ctx, store);
	t->crl_mtime = m;
	pthread_mutex_unlock(&t->lock);
	X509_STORE_free(store);
	return 1;
}

static int use_identity(SSL_CTX *ctx, const char *crt, const char *key)
{
	return SSL_CTX_use_certificate_chain_file(ctx, crt) == 1 &&
	       SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) == 1 &&
	       SSL_CTX_check_private_key(ctx) == 1;
}

int tls_ctx_reload_identity(struct tls_ctx *t, ferr_t *err)
{
	struct stat st;
	SSL_CTX *probe;
	int ok;

	if (stat(t->crt, &st) < 0 || (st.st_mtim.tv_sec == t->crt_mtime.tv_sec &&
				      st.st_mtim.tv_nsec == t->crt_mtime.tv_nsec))
		return 0;
	/* try it on a context of its own first: a half-renewed pair (the key
	 * renamed, not yet the certificate) must not replace a working one */
	t->crt_mtime = st.st_mtim; /* a failure is reported once per change */
	if (key_private(t->key, err) < 0)
		return -1;
	probe = SSL_CTX_new(t->server ? TLS_server_method() : TLS_client_method());
	ok = probe && use_identity(probe, t->crt, t->key);
	SSL_CTX_free(probe);
	if (!ok) {
		ssl_fail(err, FX_USAGE, "cannot load this host's certificate and key");
		return ferr_wrap(err, "%s", t->crt);
	}
	pthread_mutex_lock(&t->lock);
	ok = use_identity(t->ctx, t->crt, t->key);
	pthread_mutex_unlock(&t->lock);
	return ok ? 1 : ssl_fail(err, FX_USAGE, "cannot load this host's certificate and key");
}

struct tls_ctx *tls_ctx_new(const char *dir, const char *name, bool server, ferr_t *err)
{
	char ca[PATH_MAX], crt[PATH_MAX], key[PATH_MAX];
	struct tls_ctx *t = calloc(1, sizeof(*t));

	if (!t) {
		ferr_set(err, FX_FAIL, "out of memory");
		return NULL;
	}
	if (xsnprintf(ca, sizeof(ca), err, "%s/ca.pem", dir) < 0 ||
	    xsnprintf(crt, sizeof(crt), err, "%s/%s.pem", dir, name) < 0 ||
	    xsnprintf(key, sizeof(key), err, "%s/%s.key", dir, name) < 0)
		goto fail;
	if (xsnprintf(t->crl, sizeof(t->crl), err, "%s/crl.pem", dir) < 0 ||
	    key_private(key, err) < 0)
		goto fail;
	snprintf(t->ca, sizeof(t->ca), "%s", ca);
	snprintf(t->crt, sizeof(t->crt), "%s", crt);
	snprintf(t->key, sizeof(t->key), "%s", key);
	pthread_mutex_init(&t->lock, NULL);
	t->server = server;
	t->ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
	if (!t->ctx) {
		ssl_fail(err, FX_FAIL, "cannot create a TLS context");
		goto fail;
	}
	SSL_CTX_set_min_proto_version(t->ctx, TLS1_3_VERSION);
	SSL_CTX_set_max_proto_version(t->ctx, TLS1_3_VERSION);
	SSL_CTX_set_mode(t->ctx, SSL_MODE_AUTO_RETRY);
	/* pull several records per recv(): fewer system calls on the hot path */
	SSL_CTX_set_read_ahead(t->ctx, 1);
	SSL_CTX_set_default_read_buffer_len(t->ctx, 256 << 10);
	if (SSL_CTX_load_verify_locations(t->ctx, ca, NULL) != 1) {
		ssl_fail(err, FX_USAGE, "cannot load the CA certificate");
		ferr_wrap(err, "%s (create it with 'ferry cert init %s')", ca, dir);
		goto fail;
	}
	if (SSL_CTX_use_certificate_chain_file(t->ctx, crt) != 1 ||
	    SSL_CTX_use_PrivateKey_file(t->ctx, key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(t->ctx) != 1) {
		ssl_fail(err, FX_USAGE, "cannot load this host's certificate and key");
		ferr_wrap(err, "%s, %s (issue them with 'ferry cert issue %s %s')", crt, key, dir,
			  name);
		goto fail;
	}
	{
		struct stat st;
		if (stat(crt, &st) == 0)
			t->crt_mtime = st.st_mtim;
	}
	SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	if (tls_ctx_reload(t, err) < 0)
		goto fail;
	if (server) {
		STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(ca);
		if (names)
			SSL_CTX_set_client_CA_list(t->ctx, names);
		SSL_CTX_set_session_cache_mode(t->ctx, SSL_SESS_CACHE_OFF);
		SSL_CTX_set_num_tickets(t->ctx, 0);
	}
	return t;
fail:
	tls_ctx_free(t);
	return NULL;
}

void tls_ctx_free(struct tls_ctx *t)
{
	if (!t)
		return;
	SSL_CTX_free(t->ctx);
	if (t->ca[0])
		pthread_mutex_destroy(&t->lock);
	free(t);
}

static void set_timeouts(int fd, int ms)
{
	struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* Map an SSL_* failure to an error; 0 for a clean end of stream. */
static int io_fail(struct chan_tls *t, int ret, const char *op, ferr_t *err)
{
	int e = SSL_get_error(t->ssl, ret), saved = errno;

	switch (e) {
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		ERR_clear_error();
		return ferr_set(err, FX_PEER, "connection to %s stalled: no progress for %d s",
				t->c.peer, t->timeout_ms / 1000);
	case SSL_ERROR_SYSCALL:
		if (ERR_peek_error())
			break;
		if (saved == 0 || saved == EPIPE || saved == ECONNRESET)
			return ferr_set(err, FX_PEER, "connection to %s lost during %s", t->c.peer,
					op);
		errno = saved;
		return ferr_sys(err, FX_PEER, "TLS %s with %s", op, t->c.peer);
	default:
		break;
	}
	if (ERR_GET_LIB(ERR_peek_error()) == ERR_LIB_SSL &&
	    ERR_GET_REASON(ERR_peek_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
		ERR_clear_error();
		return ferr_set(err, FX_PEER, "connection to %s closed unexpectedly", t->c.peer);
	}
	if (ERR_GET_LIB(ERR_peek_error()) == ERR_LIB_SSL &&
	    ERR_GET_REASON(ERR_peek_error()) >= SSL_AD_REASON_OFFSET) {
		ssl_fail(err, FX_PEER, "TLS alert");
		return ferr_wrap(err,
				 "%s refused the TLS session (is our certificate signed by "
				 "the CA it trusts?)",
				 t->c.peer);
	}
	ssl_fail(err, FX_PEER, "TLS error");
	return ferr_wrap(err, "%s with %s", op, t->c.peer);
}

static void sync_counters(struct chan_tls *t)
{
	t->c.lower->rx_bytes = BIO_number_read(SSL_get_rbio(t->ssl));
	t->c.lower->tx_bytes = BIO_number_written(SSL_get_wbio(t->ssl));
}

static ssize_t tls_read(struct chan *c, void *buf, size_t len, ferr_t *err)
{
	struct chan_tls *t = (struct chan_tls *)c;
	size_t n = 0;
	int ret = SSL_read_ex(t->ssl, buf, len, &n);

	sync_counters(t);
	if (ret == 1)
		return (ssize_t)n;
	return io_fail(t, ret, "receive", err);
}

static ssize_t tls_write(struct chan *c, const void *buf, size_t len, ferr_t *err)
{
	struct chan_tls *t = (struct chan_tls *)c;
	size_t n = 0;
	int ret = SSL_write_ex(t->ssl, buf, len, &n);

	sync_counters(t);
	if (ret == 1)
		return (ssize_t)n;
	if (io_fail(t, ret, "send", err) == 0)
		return ferr_set(err, FX_PEER, "%s closed the connection", c->peer);
	return -1;
}

static int tls_shutdown(struct chan *c, ferr_t *err)
{
	struct chan_tls *t = (struct chan_tls *)c;

	(void)err;
	SSL_shutdown(t->ssl); /* close_notify; we do not wait for the peer's */
	ERR_clear_error();
	return 0;
}

static int tls_poll(struct chan *c, int timeout_ms)
{
	struct chan_tls *t = (struct chan_tls *)c;

	/* SSL_has_pending also sees records read ahead but not yet decrypted */
	if (SSL_has_pending(t->ssl))
		return 1;
	return chan_poll(c->lower, timeout_ms);
}

static void tls_close(struct chan *c)
{
	struct chan_tls *t = (struct chan_tls *)c;

	SSL_free(t->ssl);
	chan_close(c->lower);
	free(t);
}

static const struct chan_ops tls_ops = {
    .read = tls_read,
    .write = tls_write,
    .shutdown = tls_shutdown,
    .poll = tls_poll,
    .close = tls_close,
};

static int handshake_fail(struct chan_tls *t, int ret, bool server, ferr_t *err)
{
	long vr = SSL_get_verify_result(t->ssl);
	const char *who = server ? "client" : "server";

	if (vr != X509_V_OK) {
		ERR_clear_error();
		if (vr == X509_V_ERR_HOSTNAME_MISMATCH || vr == X509_V_ERR_IP_ADDRESS_MISMATCH)
			return ferr_set(err, FX_PEER,
					"TLS handshake with %s failed: the server's certificate "
					"is not for that name (%s); use --peer NAME with the name "
					"the server was issued",
					t->c.peer, X509_verify_cert_error_string(vr));
		return ferr_set(err, FX_PEER,
				"TLS handshake with %s failed: the %s's certificate was rejected "
				"(%s); both hosts need certificates from the same CA",
				t->c.peer, who, X509_verify_cert_error_string(vr));
	}
	if (SSL_get_error(t->ssl, ret) == SSL_ERROR_SYSCALL && !ERR_peek_error())
		return ferr_set(err, FX_PEER,
				"TLS handshake with %s failed: connection closed by the %s "
				"(does it trust our certificate's CA?)",
				t->c.peer, who);
	ssl_fail(err, FX_PEER, "TLS error");
	return ferr_wrap(err, "TLS handshake with %s failed", t->c.peer);
}

static struct chan *tls_new(struct chan *lower, struct tls_ctx *ctx, const char *peer_name,
			    int timeout_ms, ferr_t *err)
{
	struct chan_tls *t = calloc(1, sizeof(*t));
	X509 *pc;
	int ret;

	if (!t || lower->fd < 0) {
		ferr_set(err, FX_FAIL, t ? "TLS needs a socket below it" : "out of memory");
		goto fail;
	}
	chan_init(&t->c, &tls_ops, lower, lower->fd, NULL);
	t->timeout_ms = timeout_ms;
	pthread_mutex_lock(&ctx->lock);
	t->ssl = SSL_new(ctx->ctx);
	pthread_mutex_unlock(&ctx->lock);
	if (!t->ssl || SSL_set_fd(t->ssl, lower->fd) != 1) {
		ssl_fail(err, FX_FAIL, "cannot set up TLS");
		goto fail;
	}
	if (timeout_ms > 0)
		set_timeouts(lower->fd, timeout_ms);
	if (!ctx->server) {
		if (SSL_set1_host(t->ssl, peer_name) != 1) {
			ssl_fail(err, FX_USAGE, "invalid peer name");
			goto fail;
		}
		ret = SSL_connect(t->ssl);
	} else {
		ret = SSL_accept(t->ssl);
	}
	if (ret != 1) {
		handshake_fail(t, ret, ctx->server, err);
		goto fail;
	}
	pc = SSL_get1_peer_certificate(t->ssl);
	if (pc) {
		X509_NAME_get_text_by_NID(X509_get_subject_name(pc), NID_commonName, t->peer_cn,
					  sizeof(t->peer_cn));
		X509_free(pc);
	}
	sync_counters(t);
	return &t->c;
fail:
	if (t && t->ssl)
		SSL_free(t->ssl);
	free(t);
	chan_close(lower);
	return NULL;
}

struct chan *chan_tls_client(struct chan *lower, struct tls_ctx *t, const char *peer_name,
			     int timeout_ms, ferr_t *err)
{
	return tls_new(lower, t, peer_name, timeout_ms, err);
}

struct chan *chan_tls_server(struct chan *lower, struct tls_ctx *t, int timeout_ms, ferr_t *err)
{
	return tls_new(lower, t, NULL, timeout_ms, err);
}

const char *chan_tls_peer_cn(const struct chan *c)
{
	return c->ops == &tls_ops ? ((const struct chan_tls *)c)->peer_cn : "";
}
