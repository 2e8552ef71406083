/* The tenant's file system over a migration session (docs/rootfs.md): one
 * transfer is a few files (the image or the tenant's own layer as pax
 * archives, the list of deleted paths), produced as they are sent, as
 * MIG_FS_CHUNK frames, LZ4 per chunk when it shrinks, then MIG_FS_END with a
 * manifest listing them (sizes, SHA-256); the receiver stores them in a
 * directory and checks them against it before it uses a byte.
 * Used by both ends (migrate_fs.c, dst_fs.c). */
#ifndef FERRY_FS_WIRE_H
#define FERRY_FS_WIRE_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/err.h"
#include "proto/manifest.h"
#include "transport/chan.h"

#define FS_LAYER_FILE	"layer.tar"
#define FS_IMAGE_FILE	"image.tar"
#define FS_DELETED_FILE "deleted.list" /* NUL-terminated paths */

/* Sending a transfer, streamed: each file's bytes are sent as they are
 * produced (a tree packed straight into fs_stream_write, treepack_sink),
 * hashed on the way; the manifest follows the last. Nothing is staged on
 * the sender's disk. The receiver is the same (fs_wire_recv).
 *   s = fs_stream_new(); { fs_stream_open(s, NAME); writes...;
 *   fs_stream_close(s); }...; fs_stream_end(s); fs_stream_free(s). */
struct fs_stream;
struct fs_stream *fs_stream_new(struct chan *c, const char *tenant, Ferry__TenantKind kind,
				bool lz4, ferr_t *err);
/* Chunks from now on with LZ4HC at level hc (0: LZ4's fast mode, the
 * default): fewer bytes for more CPU, for what is sent while the tenant
 * runs. The receiver is the same. */
#define FS_HC_LEVEL 4
void fs_stream_level(struct fs_stream *s, int hc);
int fs_stream_open(struct fs_stream *s, const char *name, ferr_t *err);
int fs_stream_write(const void *buf, size_t len, void *s); /* a treepack_sink */
int fs_stream_close(struct fs_stream *s, ferr_t *err);
int fs_stream_end(struct fs_stream *s, uint64_t *raw, uint64_t *wire, ferr_t *err);
/* After a failed write: the channel's error into err (-1 always). */
int fs_stream_error(const struct fs_stream *s, ferr_t *err);
void fs_stream_free(struct fs_stream *s);
/* Receive one transfer into dir (flat names, never overwriting) and check
 * every file against its manifest. */
int fs_wire_recv(struct chan *c, const char *dir, uint64_t *raw, ferr_t *err);
/* The same, calling on_chunk(total raw bytes so far, arg) after each chunk
 * (the destination's fault hooks). */
int fs_wire_recv_cb(struct chan *c, const char *dir, void (*on_chunk)(uint64_t, void *), void *arg,
		    uint64_t *raw, ferr_t *err);

#endif
