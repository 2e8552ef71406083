/* CRIU's image framing (imgframe.h). */
#include "criu/imgframe.h"

#include <string.h>

uint32_t criu_img_u32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

int criu_img_header(const uint8_t *in, size_t len, uint32_t magic, const char *what, size_t *hdr,
		    ferr_t *err)
{
	*hdr = 4;
	if (len >= 4 && criu_img_u32(in) == CRIU_IMG_COMMON_MAGIC)
		*hdr = 8;
	if (len < *hdr || criu_img_u32(in + *hdr - 4) != magic)
		return ferr_set(err, FX_INTEGRITY, "not a CRIU %s image (%zu bytes, magic 0x%08x)",
				what, len, len < *hdr ? 0 : criu_img_u32(in + *hdr - 4));
	return 0;
}

int criu_img_next(const uint8_t *in, size_t len, size_t *off, const uint8_t **entry, uint32_t *n,
		  ferr_t *err)
{
	if (*off >= len)
		return 0;
	if (len - *off < 4)
		return ferr_set(err, FX_INTEGRITY, "truncated entry length at offset %zu", *off);
	*n = criu_img_u32(in + *off);
	if (*n > len - *off - 4)
		return ferr_set(err, FX_INTEGRITY,
				"entry of %u bytes at offset %zu runs past the end (%zu)", *n, *off,
				len);
	*entry = in + *off + 4;
	*off += (size_t)*n + 4;
	return 1;
}
