#include "lib/hash.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <unistd.h>

struct sha256_ctx {
	EVP_MD_CTX *md;
};

struct sha256_ctx *sha256_new(void)
{
	struct sha256_ctx *c = malloc(sizeof(*c));

	if (!c)
		return NULL;
	c->md = EVP_MD_CTX_new();
	if (!c->md || EVP_DigestInit_ex(c->md, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(c->md);
		free(c);
		return NULL;
	}
	return c;
}

void sha256_update(struct sha256_ctx *c, const void *data, size_t len)
{
	EVP_DigestUpdate(c->md, data, len);
}

void sha256_final(struct sha256_ctx *c, uint8_t out[SHA256_LEN])
{
	unsigned int n = SHA256_LEN;

	EVP_DigestFinal_ex(c->md, out, &n);
	sha256_free(c);
}

void sha256_free(struct sha256_ctx *c)
{
	if (!c)
		return;
	EVP_MD_CTX_free(c->md);
	free(c);
}

int sha256_file(const char *path, uint8_t out[SHA256_LEN], uint64_t *size, ferr_t *err)
{
	static const size_t bufsz = 1 << 20;
	struct sha256_ctx *c;
	uint64_t total = 0;
	char *buf;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return ferr_sys(err, errno == ENOENT ? FX_NOTFOUND : FX_FAIL, "open %s", path);
	buf = malloc(bufsz);
	c = sha256_new();
	if (!buf || !c) {
		free(buf);
		sha256_free(c);
		close(fd);
		return ferr_set(err, FX_FAIL, "out of memory hashing %s", path);
	}
	for (;;) {
		ssize_t n = read(fd, buf, bufsz);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			ferr_sys(err, FX_FAIL, "read %s", path);
			free(buf);
			sha256_free(c);
			close(fd);
			return -1;
		}
		if (n == 0)
			break;
		sha256_update(c, buf, (size_t)n);
		total += (uint64_t)n;
	}
	sha256_final(c, out);
	free(buf);
	close(fd);
	if (size)
		*size = total;
	return 0;
}

void hex_encode(const uint8_t *in, size_t len, char *out)
{
	static const char hx[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = hx[in[i] >> 4];
		out[2 * i + 1] = hx[in[i] & 15];
	}
	out[2 * len] = '\0';
}
