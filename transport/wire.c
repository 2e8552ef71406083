/* Session protocol rules: pure functions, unit-tested in tests/unit/test_wire.c. */
#include "transport/wire.h"

#include <stdlib.h>
#include <string.h>

#include "lib/fsutil.h"

const char *wire_type_name(uint8_t type)
{
	static const char *const names[] = {
	    [WIRE_HELLO] = "HELLO",	      [WIRE_OFFER] = "OFFER", [WIRE_ACK] = "ACK",
	    [WIRE_FILE_BEGIN] = "FILE_BEGIN", [WIRE_DATA] = "DATA",   [WIRE_FILE_END] = "FILE_END",
	    [WIRE_COMMIT] = "COMMIT",	      [WIRE_ABORT] = "ABORT", [WIRE_ERROR] = "ERROR",
	    [WIRE_STATS] = "STATS",
	};
	if (type < sizeof(names) / sizeof(names[0]) && names[type])
		return names[type];
	if (type >= WIRE_STREAM_OPEN && type <= WIRE_STREAM_LAST)
		return "STREAM";
	if (type >= WIRE_HANDOVER_FIRST && type <= WIRE_HANDOVER_LAST)
		return "HANDOVER";
	if (type >= WIRE_REQUEST_FIRST && type <= WIRE_REQUEST_LAST)
		return "REQUEST";
	return "unknown";
}

static const char *state_name(enum wire_state s)
{
	switch (s) {
	case WS_HELLO:
		return "waiting for HELLO";
	case WS_REQUEST:
		return "waiting for a request";
	case WS_IDLE:
		return "between files";
	case WS_FILE:
		return "inside a file";
	case WS_DONE:
		return "after COMMIT";
	}
	return "?";
}

int wire_rx_step(enum wire_state *st, uint8_t type, ferr_t *err)
{
	enum wire_state next = *st;
	bool ok = false;

	if (type == WIRE_ERROR)
		return 0;
	switch (*st) {
	case WS_HELLO:
		ok = type == WIRE_HELLO;
		next = WS_REQUEST;
		break;
	case WS_REQUEST:
		ok = type == WIRE_OFFER;
		next = WS_IDLE;
		break;
	case WS_IDLE:
		ok = type == WIRE_FILE_BEGIN || type == WIRE_COMMIT || type == WIRE_ABORT ||
		     type == WIRE_STATS;
		next = type == WIRE_FILE_BEGIN			   ? WS_FILE
		       : type == WIRE_COMMIT || type == WIRE_ABORT ? WS_DONE
								   : WS_IDLE;
		break;
	case WS_FILE:
		ok = type == WIRE_DATA || type == WIRE_FILE_END || type == WIRE_ABORT;
		next = type == WIRE_FILE_END ? WS_IDLE : type == WIRE_ABORT ? WS_DONE : WS_FILE;
		break;
	case WS_DONE:
		break;
	}
	if (!ok)
		return ferr_set(err, FX_INTEGRITY, "protocol violation: %s frame (type %u) %s",
				wire_type_name(type), type, state_name(*st));
	*st = next;
	return 0;
}

int wire_negotiate(uint32_t my_min, uint32_t my_max, uint32_t peer_min, uint32_t peer_max,
		   uint32_t *out, ferr_t *err)
{
	uint32_t hi = my_max < peer_max ? my_max : peer_max;
	uint32_t lo = my_min > peer_min ? my_min : peer_min;

	if (peer_min > peer_max || hi < lo)
		return ferr_set(err, FX_PEER,
				"no common protocol version: we speak %u..%u, the peer %u..%u; "
				"upgrade ferry on the older host",
				my_min, my_max, peer_min, peer_max);
	*out = hi;
	return 0;
}

bool wire_set_id_ok(const char *id)
{
	size_t n = strlen(id);

	if (n == 0 || n > 64)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = id[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-'))
			return false;
	}
	return true;
}

/* Minimal protobuf walker over the raw manifest: reports whether any
 * ImageFile.name (Manifest field 7, ImageFile field 1) holds a NUL byte. */
static int read_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	*v = 0;
	for (int shift = 0; shift < 64; shift += 7) {
		if (*p >= end)
			return -1;
		uint8_t b = *(*p)++;
		*v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return 0;
	}
	return -1;
}

/* Walk fields of one message; for each length-delimited field number `want`,
 * call fn on its bytes (fn NULL: count them into *count). Returns 1 if fn
 * returned 1, -1 if malformed. */
static int walk_count(const uint8_t *p, const uint8_t *end, uint32_t want,
		      int (*fn)(const uint8_t *, const uint8_t *), uint64_t *count)
{
	while (p < end) {
		uint64_t key, v;
		if (read_varint(&p, end, &key) < 0)
			return -1;
		switch (key & 7) {
		case 0:
			if (read_varint(&p, end, &v) < 0)
				return -1;
			break;
		case 1:
			if (end - p < 8)
				return -1;
			p += 8;
			break;
		case 5:
			if (end - p < 4)
				return -1;
			p += 4;
			break;
		case 2:
			if (read_varint(&p, end, &v) < 0 || v > (uint64_t)(end - p))
				return -1;
			if ((key >> 3) == want && !fn) {
				(*count)++;
			} else if ((key >> 3) == want) {
				int r = fn(p, p + v);
				if (r)
					return r;
			}
			p += v;
			break;
		default:
			return -1;
		}
	}
	return 0;
}

static int walk(const uint8_t *p, const uint8_t *end, uint32_t want,
		int (*fn)(const uint8_t *, const uint8_t *))
{
	return walk_count(p, end, want, fn, NULL);
}

int wire_manifest_bounded(const uint8_t *buf, size_t len, ferr_t *err)
{
	static const struct {
		uint32_t field;
		const char *what;
		uint64_t max;
	} lim[] = {{5, "argv entries", WIRE_MANIFEST_MAX_ARGV},
		   {7, "files", WIRE_MANIFEST_MAX_FILES}};

	if (len < MANIFEST_HDR_LEN)
		return ferr_set(err, FX_INTEGRITY, "the peer's manifest is truncated");
	for (size_t i = 0; i < sizeof(lim) / sizeof(lim[0]); i++) {
		uint64_t n = 0;
		if (walk_count(buf + MANIFEST_HDR_LEN, buf + len, lim[i].field, NULL, &n) < 0)
			return ferr_set(err, FX_INTEGRITY, "the peer's manifest is corrupt");
		if (n > lim[i].max)
			return ferr_set(
			    err, FX_INTEGRITY, "the peer's manifest lists %llu %s (at most %llu)",
			    (unsigned long long)n, lim[i].what, (unsigned long long)lim[i].max);
	}
	return 0;
}

static int name_has_nul(const uint8_t *p, const uint8_t *end)
{
	return memchr(p, 0, (size_t)(end - p)) ? 1 : 0;
}

static int file_name_has_nul(const uint8_t *p, const uint8_t *end)
{
	return walk(p, end, 1, name_has_nul);
}

static int reserved_name(const char *n)
{
	const char *base = strrchr(n, '/');

	base = base ? base + 1 : n;
	return !strcmp(n, MANIFEST_NAME) || !strncmp(base, ".ferry-", 7);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int check_names(const manifest_t *m, ferr_t *err)
{
	const char **v = malloc((m->n_files + 1) * sizeof(*v));
	int ret = 0;

	if (!v)
		return ferr_set(err, FX_FAIL, "out of memory");
	for (size_t i = 0; i < m->n_files; i++) {
		const char *n = m->files[i]->name;
		if (!fs_relpath_is_safe(n, strlen(n)) || reserved_name(n)) {
			ret = ferr_set(err, FX_INTEGRITY,
				       "the peer's manifest lists an unsafe file name '%s'", n);
			goto out;
		}
		v[i] = n;
	}
	qsort(v, m->n_files, sizeof(*v), cmp_str);
	for (size_t i = 1; i < m->n_files; i++) {
		size_t l = strlen(v[i - 1]);
		/* sorted: "a" < "a/b"; equal names or a file used as a directory */
		if (!strcmp(v[i - 1], v[i]) || (!strncmp(v[i - 1], v[i], l) && v[i][l] == '/')) {
			ret = ferr_set(err, FX_INTEGRITY,
				       "the peer's manifest lists '%s' twice or as a directory",
				       v[i - 1]);
			goto out;
		}
	}
out:
	free(v);
	return ret;
}

int wire_check_manifest(const uint8_t *buf, size_t len, const char *set_id, manifest_t **out,
			ferr_t *err)
{
	manifest_t *m = NULL;
	int r;

	if (wire_manifest_bounded(buf, len, err) < 0)
		return -1;
	r = walk(buf + MANIFEST_HDR_LEN, buf + len, 7, file_name_has_nul);
	if (r < 0)
		return ferr_set(err, FX_INTEGRITY, "the peer's manifest is corrupt");
	if (r > 0)
		return ferr_set(err, FX_INTEGRITY,
				"the peer's manifest lists a file name containing a NUL byte");
	if (manifest_decode(buf, len, &m, err) < 0)
		return ferr_wrap(err, "the peer's manifest");
	if (check_names(m, err) < 0)
		goto fail;
	if (!wire_set_id_ok(m->set_id) || strcmp(m->set_id, set_id)) {
		ferr_set(err, FX_INTEGRITY,
			 "the offered set id '%s' is invalid or differs from "
			 "the manifest's",
			 set_id);
		goto fail;
	}
	*out = m;
	return 0;
fail:
	manifest_free(m);
	return -1;
}

void *wire_unpack(const ProtobufCMessageDescriptor *d, const uint8_t *buf, size_t len, ferr_t *err)
{
	ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, len, buf);

	if (!m)
		ferr_set(err, FX_INTEGRITY, "malformed %s message from the peer", d->short_name);
	return m;
}

void wire_free(void *msg)
{
	if (msg)
		protobuf_c_message_free_unpacked(msg, NULL);
}
