/* SHA-256 through OpenSSL's EVP API. */
#ifndef FERRY_HASH_H
#define FERRY_HASH_H

#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"

#define SHA256_LEN     32
#define SHA256_HEX_LEN 65

struct sha256_ctx; /* opaque */

struct sha256_ctx *sha256_new(void);
void sha256_update(struct sha256_ctx *c, const void *data, size_t len);
void sha256_final(struct sha256_ctx *c, uint8_t out[SHA256_LEN]); /* also frees */
void sha256_free(struct sha256_ctx *c);
/* Hash a whole file, streaming; *size gets its length. */
int sha256_file(const char *path, uint8_t out[SHA256_LEN], uint64_t *size, ferr_t *err);
void hex_encode(const uint8_t *in, size_t len, char *out); /* out: 2*len+1 */

#endif
