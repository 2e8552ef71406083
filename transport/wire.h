/* The session protocol (docs/protocol.md): frame types, protocol versions,
 * the receiver's state machine, version negotiation and checks of what a peer
 * sends. Pure code: no I/O. */
#ifndef FERRY_WIRE_H
#define FERRY_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"
#include "proto/manifest.h"
#include "proto/wire.pb-c.h"

/* Session protocol versions this ferry speaks. 2: MigrateBegin.mode and
 * MigrateVerdict.verdict are enums (1 sent the mode as a string), so a
 * ferry of protocol 1 is refused at HELLO instead of misreading them. */
#define WIRE_PROTO_MIN 2U
#define WIRE_PROTO_MAX 2U

/* Frame types. Ranges are reserved so later protocols extend without clashes. */
enum wire_type {
	WIRE_HELLO = 1,
	WIRE_OFFER = 2, /* request: receive an image set */
	WIRE_ACK = 3,
	WIRE_FILE_BEGIN = 4,
	WIRE_DATA = 5, /* binary: data_hdr + bytes (frame.h) */
	WIRE_FILE_END = 6,
	WIRE_COMMIT = 7,
	WIRE_ABORT = 8,
	WIRE_ERROR = 9,
	WIRE_STATS = 10,
	/* 32..63: further requests after hello (restore a set, ...) */
	WIRE_REQUEST_FIRST = 32,
	WIRE_REQUEST_LAST = 63,
	/* 64..95: migration handover control messages */
	WIRE_HANDOVER_FIRST = 64,
	WIRE_HANDOVER_LAST = 95,
	/* 96..127: multiplexed byte streams on stream id != 0 (page-server relay) */
	WIRE_STREAM_OPEN = 96,
	WIRE_STREAM_DATA = 97,
	WIRE_STREAM_CLOSE = 98,
	WIRE_STREAM_LAST = 127,
};

const char *wire_type_name(uint8_t type);

/* Receiver's state in a send-set session. */
enum wire_state {
	WS_HELLO,   /* expecting HELLO */
	WS_REQUEST, /* expecting the request (OFFER) */
	WS_IDLE,    /* between files: FILE_BEGIN, COMMIT, ABORT, STATS */
	WS_FILE,    /* inside a file: DATA, FILE_END, ABORT */
	WS_DONE,    /* COMMIT received: nothing more */
};

/* Advance *st by a received frame type; an out-of-order type is an
 * FX_INTEGRITY error naming the type and state. ERROR is accepted anywhere. */
int wire_rx_step(enum wire_state *st, uint8_t type, ferr_t *err);

/* Highest version in both [min, max] ranges; FX_PEER when none. */
int wire_negotiate(uint32_t my_min, uint32_t my_max, uint32_t peer_min, uint32_t peer_max,
		   uint32_t *out, ferr_t *err);

/* A set id from a peer: 1..64 chars of [A-Za-z0-9_-]. */
bool wire_set_id_ok(const char *id);

/* Before decoding a peer's manifest (header included): its repeated fields
 * hold at most these many entries, counted on the raw bytes so that nothing
 * is allocated for a manifest of millions of tiny entries. FX_INTEGRITY. */
#define WIRE_MANIFEST_MAX_ARGV	4096
#define WIRE_MANIFEST_MAX_FILES 65536
int wire_manifest_bounded(const uint8_t *buf, size_t len, ferr_t *err);
/* Check a manifest offered by a peer before any file is created: raw bytes
 * (manifest_encode form) are scanned for file names with NUL bytes (which the
 * decoder would silently cut), every name must be a safe relative path, not
 * reserved (manifest.ferry, .ferry-*), unique, and not a prefix directory of
 * another; the set id must match; wire_manifest_bounded. Decodes into *out.
 * FX_INTEGRITY on failure. */
int wire_check_manifest(const uint8_t *buf, size_t len, const char *set_id, manifest_t **out,
			ferr_t *err);

/* Unpack helpers: NULL + FX_INTEGRITY error on a malformed payload. */
void *wire_unpack(const ProtobufCMessageDescriptor *d, const uint8_t *buf, size_t len, ferr_t *err);
void wire_free(void *msg);

#endif
