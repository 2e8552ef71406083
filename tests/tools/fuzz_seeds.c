/* Test-only: the seed corpora of the libFuzzer targets (tests/fuzz), valid
 * inputs the fuzzers mutate from:
 *   fuzz_seeds DIR   writes a few files into each of DIR/fuzz_frame,
 *                    DIR/fuzz_manifest and DIR/fuzz_request */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "migrate/handover.h"
#include "proto/manifest.h"
#include "transport/compress.h"
#include "transport/frame.h"
#include "transport/wire.h"

static const char *out_dir;

static void put(const char *target, const char *name, const void *a, size_t na, const void *b,
		size_t nb)
{
	char p[4096];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", out_dir, target);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/%s/%s", out_dir, target, name);
	if (!(f = fopen(p, "w")) || (na && fwrite(a, 1, na, f) != na) ||
	    (nb && fwrite(b, 1, nb, f) != nb) || fclose(f) != 0) {
		perror(p);
		exit(1);
	}
}

static uint8_t *pack(const ProtobufCMessage *m, size_t *n)
{
	uint8_t *b;

	*n = protobuf_c_message_get_packed_size(m);
	b = malloc(*n + 1);
	protobuf_c_message_pack(m, b);
	return b;
}

/* a frame: header and payload, appended to buf */
static void frame(uint8_t *buf, size_t *at, uint8_t type, uint32_t flags, const void *p, size_t n)
{
	struct frame_hdr h = {
	    .version = FRAME_VERSION, .type = type, .len = (uint32_t)n, .flags = flags};

	frame_hdr_encode(&h, buf + *at);
	memcpy(buf + *at + FRAME_HDR_LEN, p, n);
	*at += FRAME_HDR_LEN + n;
}

static uint8_t *manifest_bytes(size_t *n, char *id)
{
	manifest_t *m = manifest_new("web", FERRY__TENANT_KIND__TENANT_CONTAINER);
	Ferry__ImageFile *f = calloc(1, sizeof(*f));
	static uint8_t sha[32] = {1, 2, 3};
	uint8_t *b = NULL;
	ferr_t e = {0};

	ferry__image_file__init(f);
	f->name = strdup("pages-1.img");
	f->size = 4096;
	f->sha256.data = malloc(32);
	memcpy(f->sha256.data, sha, 32);
	f->sha256.len = 32;
	m->files = malloc(sizeof(*m->files));
	m->files[0] = f;
	m->n_files = 1;
	manifest_set_str(&m->rootfs, "/srv/ferry/web");
	strcpy(id, m->set_id);
	if (manifest_encode(m, &b, n, &e) < 0)
		exit(1);
	manifest_free(m);
	return b;
}

static void requests(const uint8_t *man, size_t nman, char *id)
{
	Ferry__Wire__Offer of = FERRY__WIRE__OFFER__INIT;
	Ferry__Wire__MigrateBegin b = FERRY__WIRE__MIGRATE_BEGIN__INIT;
	Ferry__Wire__MigrateFilesEnd fe = FERRY__WIRE__MIGRATE_FILES_END__INIT;
	Ferry__Wire__MigrateStep st = FERRY__WIRE__MIGRATE_STEP__INIT;
	uint8_t *p, sel;
	size_t n;

	of.set_id = id;
	of.manifest.data = (uint8_t *)man;
	of.manifest.len = nman;
	p = pack(&of.base, &n);
	sel = 1; /* index of WIRE_OFFER in fuzz_request.c's table */
	put("fuzz_request", "offer", &sel, 1, p, n);
	free(p);
	b.migration_id = "m0123456789abcdef";
	b.tenant = "web";
	b.has_kind = b.has_mode = 1;
	b.kind = FERRY__TENANT_KIND__TENANT_CONTAINER;
	b.mode = FERRY__WIRE__MIGRATION_MODE__MODE_STOP_COPY;
	b.rootfs = "/srv/ferry/web";
	b.net_addr = "10.204.0.50/24";
	p = pack(&b.base, &n);
	sel = 5;
	put("fuzz_request", "begin", &sel, 1, p, n);
	free(p);
	st.migration_id = "m0123456789abcdef";
	p = pack(&st.base, &n);
	sel = 8;
	put("fuzz_request", "query", &sel, 1, p, n);
	free(p);
	fe.manifest.data = (uint8_t *)man;
	fe.manifest.len = nman;
	p = pack(&fe.base, &n);
	sel = 10;
	put("fuzz_request", "files_end", &sel, 1, p, n);
	free(p);
}

static void frames(const uint8_t *man, size_t nman, char *id)
{
	Ferry__Wire__Hello h = FERRY__WIRE__HELLO__INIT;
	Ferry__Wire__Offer of = FERRY__WIRE__OFFER__INIT;
	static uint8_t buf[1 << 16], raw[4096], data[DATA_HDR_LEN + 8192];
	struct data_hdr d = {.index = 0, .raw_len = sizeof(raw), .offset = 0};
	size_t at = 1, n, z;
	uint8_t *p;

	buf[0] = 1; /* starts with a HELLO */
	h.min_version = WIRE_PROTO_MIN;
	h.max_version = WIRE_PROTO_MAX;
	h.host_name = "seed";
	p = pack(&h.base, &n);
	frame(buf, &at, WIRE_HELLO, 0, p, n);
	free(p);
	of.set_id = id;
	of.manifest.data = (uint8_t *)man;
	of.manifest.len = nman;
	p = pack(&of.base, &n);
	frame(buf, &at, WIRE_OFFER, 0, p, n);
	free(p);
	memset(raw, 'a', sizeof(raw));
	data_hdr_encode(&d, data);
	z = lz4_pack(raw, sizeof(raw), data + DATA_HDR_LEN, sizeof(data) - DATA_HDR_LEN);
	frame(buf, &at, WIRE_DATA, FRAME_F_LZ4, data, DATA_HDR_LEN + z);
	put("fuzz_frame", "session", buf, at, NULL, 0);
}

int main(int argc, char **argv)
{
	char id[64];
	size_t n;
	uint8_t *man;

	if (argc != 2) {
		fprintf(stderr, "usage: fuzz_seeds DIR\n");
		return 2;
	}
	out_dir = argv[1];
	mkdir(out_dir, 0755);
	man = manifest_bytes(&n, id);
	put("fuzz_manifest", "one-file", man, n, NULL, 0);
	requests(man, n, id);
	frames(man, n, id);
	free(man);
	return 0;
}
