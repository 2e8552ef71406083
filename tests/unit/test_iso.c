/* Isolation of container tenants, pure parts: sizes, ID ranges, the record
 * and proto coding of struct tenant_iso, and the range check a destination
 * makes against its registry. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/fsutil.h"
#include "tenant/cgroup.h"
#include "tenant/isolate.h"
#include "tenant/registry.h"
#include "tenant/userns.h"
#include "unit.h"

static void test_sizes(void)
{
	CHECK(cgroup_parse_size("64M") == 64LL << 20);
	CHECK(cgroup_parse_size("1G") == 1LL << 30);
	CHECK(cgroup_parse_size("2GiB") == 2LL << 30);
	CHECK(cgroup_parse_size("512k") == 512LL << 10);
	CHECK(cgroup_parse_size("4096") == 4096);
	CHECK(cgroup_parse_size("") < 0 && cgroup_parse_size("x") < 0);
	CHECK(cgroup_parse_size("-1") < 0 && cgroup_parse_size("0") < 0);
	CHECK(cgroup_parse_size("1Q") < 0 && cgroup_parse_size("99999999999T") < 0);
}

static void test_overlap(void)
{
	CHECK(userns_overlap(100000, 65536, 100000, 65536));
	CHECK(userns_overlap(100000, 65536, 165535, 1));
	CHECK(!userns_overlap(100000, 65536, 165536, 65536));
	CHECK(!userns_overlap(165536, 65536, 100000, 65536));
	CHECK(userns_overlap(0, 4294967295u, 4294967294u, 1));
}

static void test_record(void)
{
	struct tenant_rec r = {.kind = TK_CONTAINER, .state = TS_RUNNING}, back;
	char *buf;
	size_t len;

	snprintf(r.name, sizeof(r.name), "i1");
	r.iso = (struct tenant_iso){.id_base = 165536,
				    .id_count = 65536,
				    .mem_max = 64 << 20,
				    .pids_max = 32,
				    .cpu_milli = 500,
				    .io_weight = 100,
				    .hardened = true};
	CHECK(tenant_rec_encode(&r, &buf, &len, NULL) == 0);
	CHECK(tenant_rec_decode(buf, &back, NULL) == 0);
	CHECK(!memcmp(&back.iso, &r.iso, sizeof(r.iso)));
	CHECK(tenant_has_cgroup(&back.iso));
	free(buf);
	tenant_rec_free(&back);
}

static void test_proto(void)
{
	struct tenant_iso a = {
	    .id_base = 100000, .id_count = 65536, .pids_max = 9, .hardened = true};
	struct tenant_iso none = {0}, b;
	Ferry__Isolation *p = iso_to_pb(&a);

	CHECK(p != NULL);
	iso_from_pb(p, &b);
	CHECK(!memcmp(&a, &b, sizeof(a)));
	free(p);
	CHECK(iso_to_pb(&none) == NULL);
	iso_from_pb(NULL, &b);
	CHECK(!b.id_count && !tenant_has_cgroup(&b));
}

static void test_ranges(void)
{
	char dir[] = "/tmp/ferry-test-iso-XXXXXX";
	struct tenant_rec r = {.kind = TK_CONTAINER, .state = TS_RUNNING};
	struct tenant_iso iso = {.id_base = 100000, .id_count = 65536};
	uint32_t base = 0;
	ferr_t e = {0};

	CHECK(mkdtemp(dir) != NULL);
	CHECK(registry_init(dir, NULL) == 0);
	/* a name's search starts at its own slot (hosts allocate on their own) */
	uint32_t a0 = USERNS_FIRST + userns_first_slot("a") * USERNS_SIZE;
	uint32_t a1 = USERNS_FIRST + ((userns_first_slot("a") + 1) % USERNS_SLOTS) * USERNS_SIZE;
	CHECK(userns_alloc(dir, "a", &base, NULL) == 0 && base == a0);
	/* claimed by this live process: the next one gets the next range */
	CHECK(userns_alloc(dir, "a", &base, NULL) == 0 && base == a1);
	userns_unclaim(dir, a1);
	userns_unclaim(dir, a0);
	iso.id_base = a0;
	snprintf(r.name, sizeof(r.name), "holder");
	r.iso = iso;
	CHECK(registry_save(dir, &r, NULL) == 0);
	CHECK(userns_alloc(dir, "a", &base, NULL) == 0 && base == a1);
	userns_unclaim(dir, base);
	CHECK(iso_precheck(dir, "other", &iso, &e) < 0 && e.code == FX_CONFLICT &&
	      strstr(e.msg, "holder"));
	CHECK(iso_precheck(dir, "holder", &iso, NULL) == 0); /* itself */
	struct tenant_iso low = {.id_base = 0, .id_count = 65536};
	ferr_clear(&e);
	CHECK(iso_precheck(dir, "other", &low, &e) < 0 && e.code == FX_INTEGRITY);
	r.state = TS_GONE; /* a gone tenant holds nothing */
	CHECK(registry_save(dir, &r, NULL) == 0);
	CHECK(iso_precheck(dir, "other", &iso, NULL) == 0);
	CHECK(userns_alloc(dir, "a", &base, NULL) == 0 && base == a0);
	fs_rm_rf(dir, NULL);
}

int main(void)
{
	RUN(test_sizes);
	RUN(test_overlap);
	RUN(test_record);
	RUN(test_proto);
	RUN(test_ranges);
	UNIT_DONE();
}
