/* CRIU's image framing, shared by the modules that rewrite an image: an
 * optional common magic (CRIU >= 1.1), the image's own magic, then entries,
 * each a protobuf message behind its u32 length, all in the host's byte
 * order. */
#ifndef FERRY_IMGFRAME_H
#define FERRY_IMGFRAME_H

#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"

#define CRIU_IMG_COMMON_MAGIC 0x54564319U

uint32_t criu_img_u32(const uint8_t *p);
/* The header's length (4 or 8) in *hdr when `in` is an image of `magic`;
 * FX_INTEGRITY "not a CRIU WHAT image (...)" otherwise. */
int criu_img_header(const uint8_t *in, size_t len, uint32_t magic, const char *what, size_t *hdr,
		    ferr_t *err);
/* The entry at *off: 1 with *entry and *n set and *off moved past it, 0 at
 * the end, < 0 (FX_INTEGRITY) when a length runs past the end. */
int criu_img_next(const uint8_t *in, size_t len, size_t *off, const uint8_t **entry, uint32_t *n,
		  ferr_t *err);

#endif
