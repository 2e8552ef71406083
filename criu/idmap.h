/* A tenant's CRIU images under another user-namespace ID range: when the
 * range a tenant was dumped with is held by another tenant of the restoring
 * host, ferry gives it a free one (tenant/isolate.h, docs/isolation.md
 * "Re-mapping") and rewrites what of its images names host IDs:
 *
 *   - userns-ID.img: the namespace's uid_map and gid_map (lower_first is the
 *     host side; CRIU writes these maps when it recreates the namespace);
 *   - cgroup.img: owners of the cgroup directories and files it saved.
 *
 * Everything else holds the namespace's own IDs, which stay: CRIU
 * translates creds, ghost files, memfds, SysV IPC, bound UNIX sockets' and
 * ttys' owners and mount options into the dumped namespace (userns_uid() in
 * its criu/namespaces.c), and it tars tmpfs mounts from inside the
 * namespace. The images are decoded and re-encoded with protobuf-c
 * (proto/criu_idmap.proto); fields ferry does not know are kept. */
#ifndef FERRY_IDMAP_H
#define FERRY_IDMAP_H

#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"

#define IDMAP_USERNS_PREFIX "userns-" /* userns-ID.img, ID: CRIU's id of the namespace */
#define IDMAP_CGROUP_IMAGE  "cgroup.img"
#define CRIU_USERNS_MAGIC   0x55474906U
#define CRIU_CGROUP_MAGIC   0x59383330U

/* Host IDs from..from+count-1 become to..to+count-1; others stay. */
struct idmap_shift {
	uint32_t from, to, count;
};

uint32_t idmap_shift_id(const struct idmap_shift *s, uint32_t id);

enum idmap_image { IDMAP_USERNS, IDMAP_CGROUP };

/* Rewrite an image held in memory. *out is a malloc'd new image of *out_len
 * bytes, or NULL when nothing named a shifted ID (*changed 0). *changed
 * counts the IDs rewritten. FX_INTEGRITY on a bad magic, a truncated or
 * undecodable entry, or (userns) a map extent that is not inside
 * from..from+count-1: the set was not dumped under the range it names. */
int idmap_image(enum idmap_image kind, const uint8_t *in, size_t len, const struct idmap_shift *s,
		uint8_t **out, size_t *out_len, unsigned *changed, ferr_t *err);

/* The image set src under the shifted range, as a new directory dst (which
 * must not exist): the rewritten images, every other file hard-linked from
 * src (copied across file systems), a "parent" link (pre-copy rounds) made
 * absolute. src is left as it is: its manifest still describes it. FX_INTEGRITY
 * when src has no userns-ID.img. *rewritten: how many IDs changed. */
int idmap_dir(const char *src, const char *dst, const struct idmap_shift *s, unsigned *rewritten,
	      ferr_t *err);

#endif
