/* LZ4 block compression of DATA chunks (liblz4). A chunk that does not shrink
 * is sent raw (no FRAME_F_LZ4 flag), so random data costs no decompression. */
#ifndef FERRY_COMPRESS_H
#define FERRY_COMPRESS_H

#include <stddef.h>

#include "lib/err.h"

/* Worst-case compressed size of n bytes. */
size_t lz4_bound(size_t n);
/* Compress n bytes into dst (cap bytes); returns the compressed length, or 0
 * when the result would not be smaller than n (send raw). */
size_t lz4_pack(const void *src, size_t n, void *dst, size_t cap);
/* Decompress exactly raw_len bytes; FX_INTEGRITY on corrupt input. */
int lz4_unpack(const void *src, size_t n, void *dst, size_t raw_len, ferr_t *err);

#endif
