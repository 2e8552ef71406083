/* What a destination accepts from a peer (migrate/dst_check.h) and the agent
 * configuration's lines for it (agent/policy.h): kinds, roots, subnets. No
 * network: the address checks that read the host's routes are in
 * tests/integration/peer_intake.sh. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/policy.h"
#include "lib/fsutil.h"
#include "migrate/dst_check.h"
#include "unit.h"

static char tmp[] = "/tmp/ferry-intake-XXXXXX";

static void test_defaults(void)
{
	struct dst_policy p;

	dst_policy_default(&p);
	CHECK(p.kinds & (1u << TK_CONTAINER));
	CHECK(p.kinds & (1u << TK_VM));
	CHECK(!(p.kinds & (1u << TK_PROCTREE)));
	CHECK(p.n_roots == -1 && p.n_subnets == 0);
}

static void test_parse(void)
{
	struct dst_policy p;
	ferr_t e = {0};

	dst_policy_default(&p);
	CHECK(dst_policy_add_kinds(&p, "proctree", &e) == 0);
	CHECK(p.kinds & (1u << TK_PROCTREE));
	CHECK(dst_policy_add_kinds(&p, "bogus", &e) < 0);
	CHECK(dst_policy_add_root(&p, "/", &e) < 0);
	CHECK(dst_policy_add_root(&p, "/etc/ferry", &e) < 0);
	CHECK(dst_policy_add_root(&p, "/usr", &e) < 0);
	CHECK(dst_policy_add_root(&p, "relative", &e) < 0);
	CHECK(dst_policy_add_root(&p, "/dev", &e) < 0);
	CHECK(dst_policy_add_root(&p, "/dev/shm", &e) < 0);
	CHECK(dst_policy_add_root(&p, "/dev/shm/ferry", &e) == 0 && p.n_roots == 1);
	p.n_roots = -1;
	CHECK(dst_policy_add_root(&p, "/srv/tenants", &e) == 0 && p.n_roots == 1);
	CHECK(dst_policy_add_subnet(&p, "10.1.0.0/16", &e) == 0 && p.n_subnets == 1);
	CHECK(p.subnets[0].net == 0x0a010000u && p.subnets[0].mask == 0xffff0000u);
	CHECK(dst_policy_add_subnet(&p, "10.1.0.0", &e) < 0);
	CHECK(dst_policy_add_subnet(&p, "10.1.0.0/4", &e) < 0);
	CHECK(dst_policy_add_subnet(&p, "300.1.0.0/16", &e) < 0);
}

static void test_roots(void)
{
	struct dst_policy p;
	char allowed[256], in[256], out[4096], link[256], esc[256];
	ferr_t e = {0};

	snprintf(allowed, sizeof(allowed), "%s/roots", tmp);
	snprintf(in, sizeof(in), "%s/roots/t1", tmp);
	snprintf(link, sizeof(link), "%s/roots/up", tmp);
	snprintf(esc, sizeof(esc), "%s/roots/t1/../..", tmp);
	CHECK(fs_mkdir_p(in, 0700, &e) == 0);
	CHECK(symlink("/", link) == 0);
	dst_policy_default(&p);
	CHECK(dst_policy_add_root(&p, allowed, &e) == 0);
	CHECK(dst_check_root(&p, tmp, in, out, sizeof(out), &e) == 0 && !strcmp(out, in));
	CHECK(dst_check_root(&p, tmp, allowed, out, sizeof(out), &e) < 0); /* not strictly under */
	CHECK(dst_check_root(&p, tmp, link, out, sizeof(out), &e) < 0);
	CHECK(strstr(e.msg, "system directory") != NULL);
	CHECK(dst_check_root(&p, tmp, esc, out, sizeof(out), &e) < 0);
	CHECK(dst_check_root(&p, tmp, "/", out, sizeof(out), &e) < 0);
	CHECK(dst_check_root(&p, tmp, "/proc/1", out, sizeof(out), &e) < 0);
	CHECK(dst_check_root(&p, tmp, "rel", out, sizeof(out), &e) < 0);
	/* default: STATE/roots */
	dst_policy_default(&p);
	CHECK(dst_check_root(&p, tmp, in, out, sizeof(out), &e) == 0);
}

static void test_config_file(void)
{
	const char *names[] = {"send-set", "migrate", "query"};
	char path[256];
	struct policy *pol;
	ferr_t e = {0};
	FILE *f;

	snprintf(path, sizeof(path), "%s/agent.conf", tmp);
	f = fopen(path, "w");
	fputs("allow migrate a\nkinds container\nkinds proctree\nrootfs-under /srv/a /srv/b\n"
	      "subnet 10.2.0.0/24 10.3.0.0/24\n",
	      f);
	fclose(f);
	pol = policy_load(path, names, 3, &e);
	CHECK(pol != NULL);
	if (pol) {
		const struct dst_policy *p = policy_intake(pol);
		CHECK(p->kinds == ((1u << TK_CONTAINER) | (1u << TK_PROCTREE)));
		CHECK(p->n_roots == 2 && !strcmp(p->roots[1], "/srv/b"));
		CHECK(p->n_subnets == 2);
		CHECK(policy_allows(pol, "migrate", "a") && !policy_allows(pol, "query", "a"));
		policy_free(pol);
	}
	f = fopen(path, "w");
	fputs("rootfs-under /\n", f);
	fclose(f);
	CHECK(policy_load(path, names, 3, &e) == NULL && strstr(e.msg, ":1") != NULL);
}

int main(void)
{
	if (!mkdtemp(tmp))
		return 1;
	RUN(test_defaults);
	RUN(test_parse);
	RUN(test_roots);
	RUN(test_config_file);
	fs_rm_rf(tmp, NULL);
	UNIT_DONE();
}
