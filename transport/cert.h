/* Host identities: a private CA and certificates it signs (OpenSSL API, no
 * shelling out). Layout of an identity directory:
 *   DIR/ca.pem, DIR/ca.key       the CA (key 0600)
 *   DIR/NAME.pem, DIR/NAME.key   a host's certificate and key (key 0600)
 *   DIR/crl.pem                  the CA's revocation list (cert_revoke), which
 *                                agents load (transport/chan_tls.h) */
#ifndef FERRY_CERT_H
#define FERRY_CERT_H

#include "lib/err.h"

/* Create DIR (0700 if missing) with a new CA. FX_CONFLICT if DIR/ca.key exists. */
int cert_init(const char *dir, const char *ca_name, ferr_t *err);
/* Issue DIR/NAME.pem + DIR/NAME.key signed by DIR's CA: SAN DNS:NAME, plus
 * IP:NAME when NAME is an address; usable as TLS server and client.
 * FX_CONFLICT if DIR/NAME.key exists. */
int cert_issue(const char *dir, const char *name, int days, ferr_t *err);
/* Replace DIR/NAME.pem + DIR/NAME.key with a new key and certificate valid
 * for days (the old certificate stays valid until it expires or is revoked). */
int cert_renew(const char *dir, const char *name, int days, ferr_t *err);
/* Add DIR/NAME.pem to DIR/crl.pem (created when missing), signed by the CA;
 * copy it to every host's identity directory: agents reload it on change. */
int cert_revoke(const char *dir, const char *name, ferr_t *err);

/* Default lifetime of a host certificate, in days. */
#define CERT_DAYS_DEFAULT 90

#endif
