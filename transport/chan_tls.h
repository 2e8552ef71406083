/* TLS layer: OpenSSL 3, TLS 1.3 only, mutual authentication against one CA.
 * Identity directory layout (made by `ferry cert`, transport/cert.h):
 * DIR/ca.pem is the CA every peer must be signed by; DIR/NAME.pem and
 * DIR/NAME.key are this host's certificate and key (refused when group or
 * others may read it); DIR/crl.pem, when present, the CA's revocation list
 * (`ferry cert revoke`): a revoked peer certificate is refused. */
#ifndef FERRY_CHAN_TLS_H
#define FERRY_CHAN_TLS_H

#include <stdbool.h>

#include "transport/chan.h"

struct tls_ctx; /* opaque: an SSL_CTX with our identity loaded */

/* server: require a client certificate signed by the CA. client: verify the
 * server against the CA (the name is checked per connection). */
struct tls_ctx *tls_ctx_new(const char *dir, const char *name, bool server, ferr_t *err);
void tls_ctx_free(struct tls_ctx *t);
/* Reload DIR/crl.pem when it changed (appeared, changed or went) since it was
 * loaded; new handshakes use it, running sessions keep theirs. 1 when
 * reloaded, 0 when unchanged; on an error the old list stays. Thread-safe. */
int tls_ctx_reload(struct tls_ctx *t, ferr_t *err);
/* The same for this host's certificate and key (`ferry cert renew`): checked
 * on a context of their own first, so that a broken or half-written pair
 * leaves the old one in use. */
int tls_ctx_reload_identity(struct tls_ctx *t, ferr_t *err);

/* Handshake over lower (owned from now on, closed on failure). The client
 * checks that the server's certificate is for peer_name (DNS or IP SAN).
 * timeout_ms bounds every later read and write too (0: none). */
struct chan *chan_tls_client(struct chan *lower, struct tls_ctx *t, const char *peer_name,
			     int timeout_ms, ferr_t *err);
struct chan *chan_tls_server(struct chan *lower, struct tls_ctx *t, int timeout_ms, ferr_t *err);

/* Common name in the peer's verified certificate ("" when unknown). */
const char *chan_tls_peer_cn(const struct chan *c);

#endif
