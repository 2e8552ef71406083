/* LZ4 chunk codec. */
#include "transport/compress.h"

#include <lz4.h>

size_t lz4_bound(size_t n)
{
	return (size_t)LZ4_compressBound((int)n);
}

size_t lz4_pack(const void *src, size_t n, void *dst, size_t cap)
{
	int r = LZ4_compress_default(src, dst, (int)n, (int)cap);

	return r > 0 && (size_t)r < n ? (size_t)r : 0;
}

int lz4_unpack(const void *src, size_t n, void *dst, size_t raw_len, ferr_t *err)
{
	int r = LZ4_decompress_safe(src, dst, (int)n, (int)raw_len);

	if (r < 0 || (size_t)r != raw_len)
		return ferr_set(err, FX_INTEGRITY, "corrupt LZ4 chunk (%zu bytes, want %zu raw)", n,
				raw_len);
	return 0;
}
