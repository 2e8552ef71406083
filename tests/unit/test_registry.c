/* Tenant registry: record coding, atomic save, list, remove, lock, refresh;
 * host interface names. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/fsutil.h"
#include "tenant/net.h"
#include "tenant/registry.h"
#include "unit.h"

static char dir[] = "/tmp/ferry-unit-registry-XXXXXX";

static void fill(struct tenant_rec *r, const char *name)
{
	char *argv[] = {"sh", "-c", "echo 'a\\b'\nnext=line\t\x01 end", "", NULL};
	ferr_t e = {0};

	memset(r, 0, sizeof(*r));
	snprintf(r->name, sizeof(r->name), "%s", name);
	r->kind = TK_CONTAINER;
	r->state = TS_RUNNING;
	r->init_pid = 4242;
	r->init_start = 1234567890123ull;
	snprintf(r->rootfs, sizeof(r->rootfs), "/srv/root fs/%s", name);
	snprintf(r->net.addr, sizeof(r->net.addr), "10.201.0.2/24");
	snprintf(r->net.host_if, sizeof(r->net.host_if), "fy-%s", name);
	snprintf(r->net.tenant_if, sizeof(r->net.tenant_if), "eth0");
	r->created = 1700000000;
	r->updated = 1700000001;
	CHECK(tenant_rec_set_argv(r, 4, argv, &e) == 0);
}

static bool same(const struct tenant_rec *a, const struct tenant_rec *b)
{
	if (strcmp(a->name, b->name) || a->kind != b->kind || a->state != b->state ||
	    a->init_pid != b->init_pid || a->init_start != b->init_start ||
	    strcmp(a->rootfs, b->rootfs) || strcmp(a->net.addr, b->net.addr) ||
	    strcmp(a->net.host_if, b->net.host_if) || strcmp(a->net.tenant_if, b->net.tenant_if) ||
	    a->created != b->created || a->updated != b->updated ||
	    strcmp(a->last_dump, b->last_dump) || a->argc != b->argc)
		return false;
	for (int i = 0; i < a->argc; i++)
		if (strcmp(a->argv[i], b->argv[i]))
			return false;
	return b->argv[b->argc] == NULL;
}

static void test_coding(void)
{
	struct tenant_rec a, b;
	ferr_t e = {0};
	char *buf;
	size_t len;

	fill(&a, "web1");
	CHECK(tenant_rec_encode(&a, &buf, &len, &e) == 0);
	CHECK(strlen(buf) == len);
	CHECK(strstr(buf, "arg=echo 'a\\\\b'\\nnext=line\\x09\\x01 end\n") != NULL);
	CHECK(tenant_rec_decode(buf, &b, &e) == 0);
	CHECK(same(&a, &b));
	free(buf);
	tenant_rec_free(&b);
	tenant_rec_free(&a);
}

static void test_bad_records(void)
{
	static const char *bad[] = {
	    "",
	    "not a record\nname=x\n",
	    "ferry-tenant 1\nname=x\nkind=container\n",			       /* no state */
	    "ferry-tenant 1\nname=x\nkind=box\nstate=running\n",	       /* bad kind */
	    "ferry-tenant 1\nname=x\nkind=vm\nstate=running\ninit_pid=1a\n",   /* bad number */
	    "ferry-tenant 1\nname=x\nkind=vm\nstate=running\nargc=2\narg=a\n", /* short argv */
	    "ferry-tenant 1\nname=x\nkind=vm\nstate=running\narg=a\n",	       /* arg before argc */
	    "ferry-tenant 1\nname=x\nkind=vm\nstate=running\nrootfs=a\\q\n",   /* bad escape */
	    "ferry-tenant 1\nname=x\nkind=vm\nstate=running\nrootfs=a\\x00\n", /* NUL */
	    "ferry-tenant 1\nname=x\nkind=vm\nstate=running\nnoequals\n",
	};
	struct tenant_rec r;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ferr_t e = {0};
		CHECK(tenant_rec_decode(bad[i], &r, &e) < 0);
		CHECK(e.code == FX_INTEGRITY);
		CHECK(r.argv == NULL);
	}
	/* unknown keys (from a newer ferry) are ignored */
	ferr_t e = {0};
	CHECK(tenant_rec_decode("ferry-tenant 1\nname=x\nkind=vm\nstate=gone\nfuture=1\n", &r,
				&e) == 0);
	CHECK(r.kind == TK_VM && r.state == TS_GONE);
	tenant_rec_free(&r);
}

static void test_store(void)
{
	struct tenant_rec a, b, *v = NULL;
	ferr_t e = {0};
	char p[512];
	size_t n = 0;

	CHECK(registry_init(dir, &e) == 0);
	CHECK(registry_list(dir, &v, &n, &e) == 0 && n == 0);
	fill(&a, "zeta");
	CHECK(registry_save(dir, &a, &e) == 0);
	tenant_rec_free(&a);
	fill(&a, "alpha");
	CHECK(registry_save(dir, &a, &e) == 0);
	a.state = TS_DUMPED; /* overwrite: atomic replace, no temp file left */
	snprintf(a.last_dump, sizeof(a.last_dump), "/var/dumps/alpha-1");
	CHECK(registry_save(dir, &a, &e) == 0);
	snprintf(p, sizeof(p), "%s/tenants/alpha", dir);
	struct stat st;
	CHECK(stat(p, &st) == 0 && (st.st_mode & 0777) == 0700);
	CHECK(registry_load(dir, "alpha", &b, &e) == 0);
	CHECK(same(&a, &b));
	tenant_rec_free(&b);

	/* a stray temp file or directory without record is not a tenant */
	snprintf(p, sizeof(p), "%s/tenants/half", dir);
	CHECK(mkdir(p, 0700) == 0);
	CHECK(registry_list(dir, &v, &n, &e) == 0);
	CHECK(n == 2 && !strcmp(v[0].name, "alpha") && !strcmp(v[1].name, "zeta"));
	for (size_t i = 0; i < n; i++)
		tenant_rec_free(&v[i]);
	free(v);

	e = (ferr_t){0};
	CHECK(registry_load(dir, "nosuch", &b, &e) < 0 && e.code == FX_NOTFOUND);
	e = (ferr_t){0};
	CHECK(registry_load(dir, "../etc", &b, &e) < 0 && e.code == FX_USAGE);
	CHECK(registry_remove(dir, "zeta", &e) == 0);
	e = (ferr_t){0};
	CHECK(registry_remove(dir, "zeta", &e) < 0 && e.code == FX_NOTFOUND);
	snprintf(p, sizeof(p), "%s/tenants/zeta", dir);
	CHECK(access(p, F_OK) < 0);
	CHECK(registry_list(dir, &v, &n, &e) == 0 && n == 1);
	for (size_t i = 0; i < n; i++)
		tenant_rec_free(&v[i]);
	free(v);
	tenant_rec_free(&a);
}

static void test_lock(void)
{
	ferr_t e = {0};
	int a = registry_lock(dir, "alpha", &e), b;

	CHECK(a >= 0);
	b = registry_lock(dir, "alpha", &e); /* another open file: flock conflicts */
	CHECK(b < 0 && e.code == FX_CONFLICT);
	b = registry_lock(dir, "beta", &e);
	CHECK(b >= 0);
	close(b);
	close(a);
	a = registry_lock(dir, "alpha", &e);
	CHECK(a >= 0);
	close(a);
}

static void test_refresh(void)
{
	struct tenant_rec r, l;
	ferr_t e = {0};
	uint64_t st;

	fill(&r, "self");
	r.init_pid = getpid(); /* alive, same start time */
	CHECK(proc_start_time(getpid(), &st, &e) == 0);
	r.init_start = st;
	CHECK(registry_refresh(dir, &r, &e) == 0 && r.state == TS_RUNNING);
	r.init_start = st + 1; /* same PID, another process */
	CHECK(registry_refresh(dir, &r, &e) == 0 && r.state == TS_GONE && r.init_pid == 0);
	CHECK(registry_load(dir, "self", &l, &e) == 0 && l.state == TS_GONE);
	tenant_rec_free(&l);
	r.state = TS_DUMPED; /* only running/frozen records are refreshed */
	CHECK(registry_refresh(dir, &r, &e) == 0 && r.state == TS_DUMPED);
	CHECK(!tenant_pid_alive(0, 0));
	CHECK(tenant_pid_alive(getpid(), 0));
	tenant_rec_free(&r);
}

static void test_ifname(void)
{
	char a[16], b[16];

	net_host_ifname("web1", a);
	CHECK(!strcmp(a, "fy-web1"));
	net_host_ifname("abcdefghijkl", a); /* 12 chars still fit */
	CHECK(!strcmp(a, "fy-abcdefghijkl"));
	net_host_ifname("a-very-long-tenant-name-1", a);
	net_host_ifname("a-very-long-tenant-name-2", b);
	CHECK(strlen(a) == 15 && strlen(b) == 15 && strcmp(a, b));
	CHECK(!strncmp(a, "fy-a-very", 9));
}

int main(void)
{
	ferr_t e = {0};

	if (!mkdtemp(dir))
		return 1;
	RUN(test_coding);
	RUN(test_bad_records);
	RUN(test_store);
	RUN(test_lock);
	RUN(test_refresh);
	RUN(test_ifname);
	fs_rm_rf(dir, &e);
	UNIT_DONE();
}
