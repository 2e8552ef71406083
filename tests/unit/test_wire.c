/* Session rules: state machine, version negotiation, the receiver's checks of
 * a peer's manifest (unsafe, reserved, duplicate names, NUL bytes), set ids;
 * the typed migration fields (kind, mode, verdict) through encode/decode. */
#include <stdlib.h>
#include <string.h>

#include "migrate/wire_enums.h"
#include "proto/manifest.h"
#include "unit.h"
#include "transport/wire.h"

static void test_state_machine(void)
{
	enum wire_state s = WS_HELLO;
	ferr_t e = {0};

	CHECK(wire_rx_step(&s, WIRE_OFFER, &e) < 0 && e.code == FX_INTEGRITY);
	CHECK(strstr(e.msg, "OFFER") && strstr(e.msg, "HELLO"));
	CHECK(wire_rx_step(&s, WIRE_HELLO, &e) == 0 && s == WS_REQUEST);
	CHECK(wire_rx_step(&s, WIRE_DATA, &e) < 0);
	CHECK(wire_rx_step(&s, WIRE_OFFER, &e) == 0 && s == WS_IDLE);
	CHECK(wire_rx_step(&s, WIRE_DATA, &e) < 0); /* data outside a file */
	CHECK(wire_rx_step(&s, WIRE_FILE_END, &e) < 0);
	CHECK(wire_rx_step(&s, WIRE_FILE_BEGIN, &e) == 0 && s == WS_FILE);
	CHECK(wire_rx_step(&s, WIRE_FILE_BEGIN, &e) < 0); /* nested file */
	CHECK(wire_rx_step(&s, WIRE_COMMIT, &e) < 0);	  /* commit inside a file */
	CHECK(wire_rx_step(&s, WIRE_DATA, &e) == 0 && s == WS_FILE);
	CHECK(wire_rx_step(&s, WIRE_ERROR, &e) == 0 && s == WS_FILE);
	CHECK(wire_rx_step(&s, WIRE_FILE_END, &e) == 0 && s == WS_IDLE);
	CHECK(wire_rx_step(&s, WIRE_COMMIT, &e) == 0 && s == WS_DONE);
	CHECK(wire_rx_step(&s, WIRE_FILE_BEGIN, &e) < 0);
	CHECK(wire_rx_step(&s, 200, &e) < 0);
}

static void test_negotiate(void)
{
	uint32_t v = 0;
	ferr_t e = {0};

	CHECK(wire_negotiate(1, 1, 1, 1, &v, &e) == 0 && v == 1);
	CHECK(wire_negotiate(1, 3, 1, 2, &v, &e) == 0 && v == 2); /* newer talks to older */
	CHECK(wire_negotiate(1, 2, 1, 5, &v, &e) == 0 && v == 2);
	CHECK(wire_negotiate(2, 3, 1, 1, &v, &e) < 0 && e.code == FX_PEER);
	CHECK(strstr(e.msg, "upgrade") != NULL);
	CHECK(wire_negotiate(1, 1, 3, 2, &v, &e) < 0); /* inverted range */
}

static void test_set_id(void)
{
	CHECK(wire_set_id_ok("0123456789abcdef0123456789abcdef"));
	CHECK(!wire_set_id_ok(""));
	CHECK(!wire_set_id_ok(".."));
	CHECK(!wire_set_id_ok("a/b"));
	CHECK(!wire_set_id_ok("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdefX"));
}

/* Encode a manifest listing names (n of them) with raw lengths. */
static int check_names(const char *const *names, const size_t *lens, size_t n, ferr_t *e)
{
	manifest_t *m = manifest_new("t", FERRY__TENANT_KIND__TENANT_PROCTREE), *out = NULL;
	static uint8_t sha[32];
	uint8_t *buf;
	size_t len;
	int r;

	m->files = calloc(n, sizeof(*m->files));
	for (size_t i = 0; i < n; i++) {
		Ferry__ImageFile *f = calloc(1, sizeof(*f));
		ferry__image_file__init(f);
		f->name = calloc(1, lens[i] + 1);
		memset(f->name, 'q', lens[i]); /* placeholder, patched below */
		f->sha256.data = malloc(32);
		memcpy(f->sha256.data, sha, 32);
		f->sha256.len = 32;
		m->files[m->n_files++] = f;
	}
	CHECK(manifest_encode(m, &buf, &len, e) == 0);
	/* patch real names in over the placeholders, in order */
	uint8_t *p = buf;
	for (size_t i = 0; i < n; i++) {
		char *ph = calloc(1, lens[i] + 1);
		memset(ph, 'q', lens[i]);
		p = memmem(p, len - (size_t)(p - buf), ph, lens[i]);
		memcpy(p, names[i], lens[i]);
		p += lens[i];
		free(ph);
	}
	r = wire_check_manifest(buf, len, m->set_id, &out, e);
	manifest_free(out);
	manifest_free(m);
	free(buf);
	return r;
}

static void test_manifest_names(void)
{
	ferr_t e = {0};
	const char *ok[] = {"pages-1.img", "sub/core-1.img"};
	size_t okl[] = {11, 14};
	const char *dd[] = {"../x"}, *ab[] = {"/etc/x"}, *nul[] = {"a\0/../x"};
	size_t ddl[] = {4}, abl[] = {6}, null[] = {7};
	const char *dup[] = {"a", "a"}, *dir[] = {"a", "a/b"}, *res[] = {"manifest.ferry"};
	size_t dupl[] = {1, 1}, dirl[] = {1, 3}, resl[] = {14};
	const char *hid[] = {"x/.ferry-progress"}, *dots[] = {"a/./b"};
	size_t hidl[] = {17}, dotsl[] = {5};

	CHECK(check_names(ok, okl, 2, &e) == 0);
	CHECK(check_names(dd, ddl, 1, &e) < 0 && e.code == FX_INTEGRITY);
	CHECK(check_names(ab, abl, 1, &e) < 0);
	CHECK(check_names(nul, null, 1, &e) < 0 && strstr(e.msg, "NUL"));
	CHECK(check_names(dup, dupl, 2, &e) < 0);
	CHECK(check_names(dir, dirl, 2, &e) < 0);
	CHECK(check_names(res, resl, 1, &e) < 0);
	CHECK(check_names(hid, hidl, 1, &e) < 0);
	CHECK(check_names(dots, dotsl, 1, &e) < 0);
}

static void test_manifest_mismatch(void)
{
	manifest_t *m = manifest_new("t", FERRY__TENANT_KIND__TENANT_PROCTREE), *out = NULL;
	uint8_t *buf;
	size_t len;
	ferr_t e = {0};

	CHECK(manifest_encode(m, &buf, &len, &e) == 0);
	CHECK(wire_check_manifest(buf, len, "0000", &out, &e) < 0); /* id differs */
	CHECK(wire_check_manifest(buf, len, m->set_id, &out, &e) == 0);
	manifest_free(out);
	buf[len - 1] ^= 0xff; /* corrupt */
	out = NULL;
	CHECK(wire_check_manifest(buf, 5, m->set_id, &out, &e) < 0);
	free(buf);
	manifest_free(m);
}

/* Pack a MigrateBegin and unpack it as a peer would. */
static Ferry__Wire__MigrateBegin *begin_roundtrip(const Ferry__Wire__MigrateBegin *b)
{
	size_t len = ferry__wire__migrate_begin__get_packed_size(b);
	uint8_t *buf = malloc(len ? len : 1);
	ferr_t e = {0};
	Ferry__Wire__MigrateBegin *out;

	ferry__wire__migrate_begin__pack(b, buf);
	out = wire_unpack(&ferry__wire__migrate_begin__descriptor, buf, len, &e);
	free(buf);
	return out;
}

static void test_begin_kind_mode(void)
{
	const enum tenant_kind kinds[] = {TK_CONTAINER, TK_PROCTREE, TK_VM};
	const enum mig_mode modes[] = {MIG_STOP_COPY, MIG_PRE_COPY, MIG_POST_COPY};
	Ferry__Wire__MigrateBegin b = FERRY__WIRE__MIGRATE_BEGIN__INIT, *out;
	enum tenant_kind k;
	enum mig_mode m;
	ferr_t e = {0};

	b.migration_id = "m1";
	b.tenant = "t";
	for (size_t i = 0; i < 3; i++) {
		for (size_t j = 0; j < 3; j++) {
			b.has_kind = b.has_mode = true;
			b.kind = tenant_kind_to_pb(kinds[i]);
			b.mode = mode_to_wire(modes[j]);
			out = begin_roundtrip(&b);
			CHECK(out && begin_kind_mode(out, &k, &m, &e) == 0);
			CHECK(k == kinds[i] && m == modes[j]);
			wire_free(out);
		}
	}
	/* auto is resolved before it is sent; never sent as such */
	CHECK(mode_to_wire(MIG_AUTO) == FERRY__WIRE__MIGRATION_MODE__MODE_STOP_COPY);
	/* absent fields: a protocol error naming the field */
	b.has_mode = false;
	out = begin_roundtrip(&b);
	CHECK(out && begin_kind_mode(out, &k, &m, &e) < 0 && e.code == FX_INTEGRITY);
	CHECK(strstr(e.msg, "mode") != NULL);
	wire_free(out);
	b.has_mode = true;
	b.has_kind = false;
	out = begin_roundtrip(&b);
	CHECK(out && begin_kind_mode(out, &k, &m, &e) < 0 && strstr(e.msg, "kind"));
	wire_free(out);
	/* values this build does not know (a newer peer, or garbage) */
	b.has_kind = true;
	b.kind = FERRY__TENANT_KIND__TENANT_UNKNOWN;
	out = begin_roundtrip(&b);
	CHECK(out && begin_kind_mode(out, &k, &m, &e) < 0);
	wire_free(out);
	b.kind = FERRY__TENANT_KIND__TENANT_PROCTREE;
	b.mode = (Ferry__Wire__MigrationMode)9;
	out = begin_roundtrip(&b);
	CHECK(!out || begin_kind_mode(out, &k, &m, &e) < 0);
	wire_free(out);
}

static void test_verdict(void)
{
	const enum mig_verdict vs[] = {MV_COMMIT, MV_ABORT, MV_PENDING, MV_UNKNOWN};
	Ferry__Wire__MigrateVerdict mv = FERRY__WIRE__MIGRATE_VERDICT__INIT, *out;
	uint8_t buf[128];
	enum mig_verdict v;
	ferr_t e = {0};
	size_t len;

	mv.migration_id = "m1";
	for (size_t i = 0; i < 4; i++) {
		mv.verdict = verdict_to_wire(vs[i]);
		len = ferry__wire__migrate_verdict__pack(&mv, buf);
		out = wire_unpack(&ferry__wire__migrate_verdict__descriptor, buf, len, &e);
		CHECK(out && verdict_from_wire(out->verdict, &v) == 0 && v == vs[i]);
		CHECK(!strcmp(mig_verdict_str(v), mig_verdict_str(vs[i])));
		wire_free(out);
	}
	mv.verdict = (Ferry__Wire__Verdict)0;
	len = ferry__wire__migrate_verdict__pack(&mv, buf);
	out = wire_unpack(&ferry__wire__migrate_verdict__descriptor, buf, len, &e);
	CHECK(!out || verdict_from_wire(out->verdict, &v) < 0);
	wire_free(out);
}

static void test_tenant_kind_pb(void)
{
	enum tenant_kind k;

	for (int i = TK_CONTAINER; i <= TK_VM; i++)
		CHECK(tenant_kind_from_pb(tenant_kind_to_pb((enum tenant_kind)i), &k) == 0 &&
		      k == (enum tenant_kind)i);
	CHECK(tenant_kind_from_pb(FERRY__TENANT_KIND__TENANT_UNKNOWN, &k) < 0);
	CHECK(tenant_kind_from_pb((Ferry__TenantKind)42, &k) < 0);
}

int main(void)
{
	RUN(test_state_machine);
	RUN(test_negotiate);
	RUN(test_set_id);
	RUN(test_manifest_names);
	RUN(test_manifest_mismatch);
	RUN(test_begin_kind_mode);
	RUN(test_verdict);
	RUN(test_tenant_kind_pb);
	UNIT_DONE();
}
