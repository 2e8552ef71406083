/* CA and host certificates: EC P-256 keys, X509v3 extensions. */
#include "transport/cert.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/fsutil.h"
#include "lib/util.h"

/* a revocation list is good for this long after its last update */
#define CRL_DAYS 3650

static int ossl_fail(ferr_t *err, const char *what)
{
	char buf[256] = "";
	unsigned long e = ERR_get_error();

	if (e)
		ERR_error_string_n(e, buf, sizeof(buf));
	ERR_clear_error();
	return ferr_set(err, FX_FAIL, "%s%s%s", what, buf[0] ? ": " : "", buf);
}

/* Create path exclusively with mode (never chmod afterwards) and write it. */
static int write_pem(const char *path, mode_t mode, EVP_PKEY *key, X509 *crt, ferr_t *err)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	FILE *f;
	int ok;

	if (fd < 0)
		return ferr_sys(err, errno == EEXIST ? FX_CONFLICT : FX_FAIL, "create %s", path);
	f = fdopen(fd, "w");
	if (!f) {
		close(fd);
		unlink(path);
		return ferr_sys(err, FX_FAIL, "open %s", path);
	}
	ok = key ? PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) : PEM_write_X509(f, crt);
	if (fflush(f) != 0 || fsync(fileno(f)) != 0)
		ok = 0;
	if (fclose(f) != 0 || !ok) {
		unlink(path);
		return ossl_fail(err, "cannot write a PEM file");
	}
	return 0;
}

static int add_ext(X509 *crt, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	int ok;

	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, issuer, crt, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (!ext)
		return 0;
	ok = X509_add_ext(crt, ext, -1);
	X509_EXTENSION_free(ext);
	return ok;
}

/* A certificate skeleton: random serial, validity, subject CN, public key. */
static X509 *new_cert(EVP_PKEY *key, const char *cn, int days)
{
	X509 *crt = X509_new();
	BIGNUM *bn = BN_new();
	X509_NAME *name;

	if (!crt || !bn || !BN_rand(bn, 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) ||
	    !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(crt)) || !X509_set_version(crt, 2) ||
	    !X509_gmtime_adj(X509_getm_notBefore(crt), -3600) ||
	    !X509_gmtime_adj(X509_getm_notAfter(crt), (long)days * 86400) ||
	    !X509_set_pubkey(crt, key))
		goto fail;
	name = X509_get_subject_name(crt);
	if (!X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, (const unsigned char *)"ferry",
					-1, -1, 0) ||
	    !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1,
					-1, 0))
		goto fail;
	BN_free(bn);
	return crt;
fail:
	BN_free(bn);
	X509_free(crt);
	return NULL;
}

int cert_init(const char *dir, const char *ca_name, ferr_t *err)
{
	char kpath[PATH_MAX], cpath[PATH_MAX];
	EVP_PKEY *key = NULL;
	X509 *crt = NULL;
	int ret = -1;

	if (fs_mkdir_p(dir, 0700, err) < 0)
		return -1;
	if (xsnprintf(kpath, sizeof(kpath), err, "%s/ca.key", dir) < 0 ||
	    xsnprintf(cpath, sizeof(cpath), err, "%s/ca.pem", dir) < 0)
		return -1;
	if (access(kpath, F_OK) == 0)
		return ferr_set(err, FX_CONFLICT, "%s already exists: this directory has a CA",
				kpath);
	key = EVP_EC_gen("P-256");
	if (!key) {
		ossl_fail(err, "cannot generate the CA key");
		goto out;
	}
	crt = new_cert(key, ca_name, 3650);
	if (!crt || !X509_set_issuer_name(crt, X509_get_subject_name(crt)) ||
	    !add_ext(crt, crt, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") ||
	    !add_ext(crt, crt, NID_key_usage, "critical,keyCertSign,cRLSign") ||
	    !add_ext(crt, crt, NID_subject_key_identifier, "hash") ||
	    !X509_sign(crt, key, EVP_sha256())) {
		ossl_fail(err, "cannot build the CA certificate");
		goto out;
	}
	if (write_pem(kpath, 0600, key, NULL, err) < 0)
		goto out;
	if (write_pem(cpath, 0644, NULL, crt, err) < 0) {
		unlink(kpath);
		goto out;
	}
	ret = 0;
out:
	X509_free(crt);
	EVP_PKEY_free(key);
	return ret;
}

static EVP_PKEY *load_key(const char *path, ferr_t *err)
{
	FILE *f = fopen(path, "re");
	EVP_PKEY *k;

	if (!f) {
		ferr_sys(err, FX_NOTFOUND, "open %s (run 'ferry cert init' first)", path);
		return NULL;
	}
	k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	if (!k)
		ossl_fail(err, "cannot read the CA key");
	return k;
}

static X509 *load_cert(const char *path, ferr_t *err)
{
	FILE *f = fopen(path, "re");
	X509 *c;

	if (!f) {
		ferr_sys(err, FX_NOTFOUND, "open %s (run 'ferry cert init' first)", path);
		return NULL;
	}
	c = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (!c)
		ossl_fail(err, "cannot read the CA certificate");
	return c;
}

static int name_ok(const char *name)
{
	if (!*name || strlen(name) > 253 || !fs_name_is_safe(name, strlen(name)) ||
	    !strcmp(name, "ca"))
		return 0;
	for (const char *p = name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_' || *p == ':'))
			return 0;
	return 1;
}

/* Install the .new files written for a renewal over the old ones. */
static int install_new(const char *kpath, const char *cpath, ferr_t *err)
{
	char kn[PATH_MAX], cn[PATH_MAX];

	snprintf(kn, sizeof(kn), "%s.new", kpath);
	snprintf(cn, sizeof(cn), "%s.new", cpath);
	if (rename(kn, kpath) < 0 || rename(cn, cpath) < 0)
		return ferr_sys(err, FX_FAIL, "install the renewed %s", cpath);
	return 0;
}

/* Issue (replace: renew, with a new key) NAME's certificate. */
static int issue(const char *dir, const char *name, int days, bool replace, ferr_t *err)
{
	char kpath[PATH_MAX], cpath[PATH_MAX], capath[PATH_MAX], cakpath[PATH_MAX], san[600];
	EVP_PKEY *cakey = NULL, *key = NULL;
	X509 *ca = NULL, *crt = NULL;
	ASN1_OCTET_STRING *ip;
	int ret = -1;

	if (!name_ok(name))
		return ferr_set(err, FX_USAGE,
				"invalid certificate name '%s': use a host name or an address "
				"(letters, digits, '-', '.', '_', ':'; not 'ca')",
				name);
	if (xsnprintf(kpath, sizeof(kpath), err, "%s/%s.key%s", dir, name, replace ? ".new" : "") <
		0 ||
	    xsnprintf(cpath, sizeof(cpath), err, "%s/%s.pem%s", dir, name, replace ? ".new" : "") <
		0 ||
	    xsnprintf(capath, sizeof(capath), err, "%s/ca.pem", dir) < 0 ||
	    xsnprintf(cakpath, sizeof(cakpath), err, "%s/ca.key", dir) < 0)
		return -1;
	if (replace) { /* leftovers of an interrupted renewal */
		unlink(kpath);
		unlink(cpath);
	} else if (access(kpath, F_OK) == 0) {
		return ferr_set(err, FX_CONFLICT, "%s already exists", kpath);
	}
	if (!(ca = load_cert(capath, err)) || !(cakey = load_key(cakpath, err)))
		goto out;
	key = EVP_EC_gen("P-256");
	if (!key) {
		ossl_fail(err, "cannot generate a key");
		goto out;
	}
	ip = a2i_IPADDRESS(name);
	snprintf(san, sizeof(san), ip ? "DNS:%s,IP:%s" : "DNS:%s", name, name);
	ASN1_OCTET_STRING_free(ip);
	crt = new_cert(key, name, days);
	if (!crt || !X509_set_issuer_name(crt, X509_get_subject_name(ca)) ||
	    !add_ext(crt, ca, NID_basic_constraints, "critical,CA:FALSE") ||
	    !add_ext(crt, ca, NID_key_usage, "critical,digitalSignature") ||
	    !add_ext(crt, ca, NID_ext_key_usage, "serverAuth,clientAuth") ||
	    !add_ext(crt, ca, NID_subject_alt_name, san) ||
	    !add_ext(crt, ca, NID_subject_key_identifier, "hash") ||
	    !add_ext(crt, ca, NID_authority_key_identifier, "keyid:always") ||
	    !X509_sign(crt, cakey, EVP_sha256())) {
		ossl_fail(err, "cannot build the certificate");
		goto out;
	}
	if (write_pem(kpath, 0600, key, NULL, err) < 0)
		goto out;
	if (write_pem(cpath, 0644, NULL, crt, err) < 0) {
		unlink(kpath);
		goto out;
	}
	ret = 0;
	if (replace) {
		kpath[strlen(kpath) - 4] = cpath[strlen(cpath) - 4] = '\0';
		ret = install_new(kpath, cpath, err);
	}
out:
	X509_free(crt);
	X509_free(ca);
	EVP_PKEY_free(key);
	EVP_PKEY_free(cakey);
	return ret;
}

int cert_issue(const char *dir, const char *name, int days, ferr_t *err)
{
	return issue(dir, name, days, false, err);
}

int cert_renew(const char *dir, const char *name, int days, ferr_t *err)
{
	char cpath[PATH_MAX];

	if (!name_ok(name))
		return ferr_set(err, FX_USAGE, "invalid certificate name '%s'", name);
	if (xsnprintf(cpath, sizeof(cpath), err, "%s/%s.pem", dir, name) < 0)
		return -1;
	if (access(cpath, F_OK) != 0)
		return ferr_sys(err, FX_NOTFOUND, "%s (issue it first)", cpath);
	return issue(dir, name, days, true, err);
}

/* The CA's CRL: the existing DIR/crl.pem, or a new empty one. */
static X509_CRL *load_crl(const char *path, X509 *ca, ferr_t *err)
{
	FILE *f = fopen(path, "re");
	X509_CRL *crl;

	if (f) {
		crl = PEM_read_X509_CRL(f, NULL, NULL, NULL);
		fclose(f);
		if (!crl)
			ossl_fail(err, "cannot read the revocation list");
		return crl;
	}
	crl = X509_CRL_new();
	if (!crl || !X509_CRL_set_version(crl, 1) ||
	    !X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca))) {
		X509_CRL_free(crl);
		ossl_fail(err, "cannot create a revocation list");
		return NULL;
	}
	return crl;
}

/* Add crt to the CRL (once), update its dates, sign it. */
static int crl_add(X509_CRL *crl, X509 *crt, EVP_PKEY *cakey, ferr_t *err)
{
	X509_REVOKED *rev = NULL, *found = NULL;
	ASN1_TIME *now = ASN1_TIME_new(), *next = ASN1_TIME_new();
	int ok = now && next && X509_gmtime_adj(now, 0) && X509_gmtime_adj(next, CRL_DAYS * 86400L);

	if (ok && X509_CRL_get0_by_serial(crl, &found, X509_get_serialNumber(crt)) != 1) {
		rev = X509_REVOKED_new();
		ok = rev && X509_REVOKED_set_serialNumber(rev, X509_get_serialNumber(crt)) &&
		     X509_REVOKED_set_revocationDate(rev, now) && X509_CRL_add0_revoked(crl, rev);
		if (!ok)
			X509_REVOKED_free(rev);
	}
	ok = ok && X509_CRL_set1_lastUpdate(crl, now) && X509_CRL_set1_nextUpdate(crl, next) &&
	     X509_CRL_sort(crl) && X509_CRL_sign(crl, cakey, EVP_sha256());
	ASN1_TIME_free(now);
	ASN1_TIME_free(next);
	return ok ? 0 : ossl_fail(err, "cannot update the revocation list");
}

static int write_crl(const char *path, X509_CRL *crl, ferr_t *err)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data;
	long len;
	int ret;

	if (!b || !PEM_write_bio_X509_CRL(b, crl)) {
		BIO_free(b);
		return ossl_fail(err, "cannot encode the revocation list");
	}
	len = BIO_get_mem_data(b, &data);
	ret = fs_write_atomic(path, data, (size_t)len, 0644, err);
	BIO_free(b);
	return ret;
}

int cert_revoke(const char *dir, const char *name, ferr_t *err)
{
	char cpath[PATH_MAX], capath[PATH_MAX], cakpath[PATH_MAX], crlpath[PATH_MAX];
	X509 *ca = NULL, *crt = NULL;
	EVP_PKEY *cakey = NULL;
	X509_CRL *crl = NULL;
	int ret = -1;

	if (!name_ok(name))
		return ferr_set(err, FX_USAGE, "invalid certificate name '%s'", name);
	if (xsnprintf(cpath, sizeof(cpath), err, "%s/%s.pem", dir, name) < 0 ||
	    xsnprintf(capath, sizeof(capath), err, "%s/ca.pem", dir) < 0 ||
	    xsnprintf(cakpath, sizeof(cakpath), err, "%s/ca.key", dir) < 0 ||
	    xsnprintf(crlpath, sizeof(crlpath), err, "%s/crl.pem", dir) < 0)
		return -1;
	if (!(ca = load_cert(capath, err)) || !(cakey = load_key(cakpath, err)) ||
	    !(crt = load_cert(cpath, err)) || !(crl = load_crl(crlpath, ca, err)))
		goto out;
	if (X509_check_issued(ca, crt) != X509_V_OK) {
		ferr_set(err, FX_USAGE, "%s was not issued by the CA in %s", cpath, dir);
		goto out;
	}
	ret = crl_add(crl, crt, cakey, err) < 0 ? -1 : write_crl(crlpath, crl, err);
out:
	X509_CRL_free(crl);
	X509_free(crt);
	X509_free(ca);
	EVP_PKEY_free(cakey);
	return ret;
}
