/* libFuzzer target: the decoding the agent's request handlers do on a
 * peer's request frame before acting on it. The first byte picks the
 * frame type; the rest is its payload: protobuf decoding, then each
 * handler's checks (ids, names, kinds and modes, the manifest in an OFFER or
 * FILES_END, the migration id binding of agent/bind.c). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/bind.h"
#include "migrate/handover.h"
#include "migrate/wire_enums.h"
#include "proto/manifest.h"
#include "tenant/registry.h"
#include "transport/frame.h"
#include "lib/util.h"
#include "transport/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct {
	uint8_t type;
	const ProtobufCMessageDescriptor *d;
} reqs[] = {
    {WIRE_HELLO, &ferry__wire__hello__descriptor},
    {WIRE_OFFER, &ferry__wire__offer__descriptor},
    {WIRE_FILE_BEGIN, &ferry__wire__file_begin__descriptor},
    {WIRE_FILE_END, &ferry__wire__file_end__descriptor},
    {WIRE_ERROR, &ferry__wire__error__descriptor},
    {MIG_REQ_BEGIN, &ferry__wire__migrate_begin__descriptor},
    {MIG_REQ_RESOLVE, &ferry__wire__migrate_resolve__descriptor},
    {MIG_REQ_PAGES, &ferry__wire__migrate_step__descriptor},
    {MIG_REQ_QUERY, &ferry__wire__migrate_step__descriptor},
    {MIG_FILE, &ferry__wire__migrate_file__descriptor},
    {MIG_FILES_END, &ferry__wire__migrate_files_end__descriptor},
    {MIG_ROUND, &ferry__wire__migrate_round__descriptor},
    {MIG_VERDICT, &ferry__wire__migrate_verdict__descriptor},
};

static void manifest_bytes(const uint8_t *p, size_t n, const char *id)
{
	manifest_t *m = NULL;
	ferr_t e = {0};

	if (wire_check_manifest(p, n, id, &m, &e) == 0)
		manifest_free(m);
}

static void checks(uint8_t type, void *msg)
{
	ferr_t e = {0};

	if (type == WIRE_OFFER) {
		Ferry__Wire__Offer *o = msg;
		if (o->set_id && wire_set_id_ok(o->set_id))
			manifest_bytes(o->manifest.data, o->manifest.len, o->set_id);
	} else if (type == MIG_FILES_END) {
		Ferry__Wire__MigrateFilesEnd *f = msg;
		manifest_t *m = NULL;
		if (wire_manifest_bounded(f->manifest.data, f->manifest.len, &e) == 0 &&
		    manifest_decode(f->manifest.data, f->manifest.len, &m, &e) == 0) {
			manifest_bytes(f->manifest.data, f->manifest.len, m->set_id);
			manifest_free(m);
		}
	} else if (type == MIG_REQ_BEGIN) {
		Ferry__Wire__MigrateBegin *b = msg;
		enum tenant_kind k;
		enum mig_mode mm;
		if (wire_set_id_ok(b->migration_id) && tenant_name_valid(b->tenant))
			begin_kind_mode(b, &k, &mm, &e);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct bind_tab *binds;
	struct frame_buf fb = {0};
	char id[65];
	bool bound;
	ferr_t e = {0};
	void *msg;

	if (size < 1 || size - 1 > FRAME_MAX)
		return 0;
	if (!binds && !(binds = bind_tab_new(64, 0, &e)))
		abort();
	int i = data[0] % (sizeof(reqs) / sizeof(*reqs));
	fb.h.type = reqs[i].type;
	fb.h.len = (uint32_t)(size - 1);
	fb.data = malloc(size); /* its own copy: no reads past the payload */
	if (!fb.data)
		abort();
	memcpy(fb.data, data + 1, size - 1);
	if (bind_check(binds, &fb, (data[0] & 0x80) ? "a" : "b", id, sizeof(id), &bound, &e) == 0 &&
	    bound)
		bind_end(binds, id);
	if ((msg = wire_unpack(reqs[i].d, fb.data, fb.h.len, &e))) {
		checks(reqs[i].type, msg);
		wire_free(msg);
	}
	free(fb.data);
	return 0;
}
