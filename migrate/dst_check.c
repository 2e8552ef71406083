/* What a destination accepts from a peer (dst_check.h). */
#include "migrate/dst_check.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netlink/netlink.h>
#include <netlink/route/route.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/log.h"
#include "lib/util.h"
#include "tenant/isolate.h"
#include "tenant/kind.h"
#include "tenant/net.h"

/* Never a tenant's root, nor anything under it (the root itself: / is
 * refused by the "strictly under an allowed directory" rule and here). */
static const char *const system_dirs[] = {"/bin",   "/boot",  "/dev",	 "/etc",  "/lib",
					  "/lib32", "/lib64", "/libx32", "/proc", "/run",
					  "/sbin",  "/sys",   "/usr"};

void dst_policy_default(struct dst_policy *p)
{
	memset(p, 0, sizeof(*p));
	p->kinds = 1u << TK_CONTAINER | 1u << TK_VM;
	p->n_roots = -1;
}

int dst_policy_add_kinds(struct dst_policy *p, const char *list, ferr_t *err)
{
	char buf[256], *save = NULL;

	if (snprintf(buf, sizeof(buf), "%s", list) >= (int)sizeof(buf))
		return ferr_set(err, FX_USAGE, "kinds: list too long");
	for (char *k = strtok_r(buf, ",", &save); k; k = strtok_r(NULL, ",", &save)) {
		if (!strcmp(k, "container"))
			p->kinds |= 1u << TK_CONTAINER;
		else if (!strcmp(k, "proctree"))
			p->kinds |= 1u << TK_PROCTREE;
		else if (!strcmp(k, "vm"))
			p->kinds |= 1u << TK_VM;
		else if (!strcmp(k, "none"))
			p->kinds = 0;
		else
			return ferr_set(err, FX_USAGE,
					"unknown tenant kind '%s' (container, proctree, vm, none)",
					k);
	}
	return 0;
}

static bool under(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	if (n == 1 && dir[0] == '/')
		return path[0] == '/';
	return !strncmp(path, dir, n) && (path[n] == '/' || path[n] == '\0');
}

/* The system directory path is or lies in, or NULL. /dev/shm is storage
 * (tmpfs), not devices. */
static const char *system_dir(const char *path)
{
	if (!strcmp(path, "/"))
		return "/";
	if (under(path, "/dev/shm") && strcmp(path, "/dev/shm"))
		return NULL;
	for (size_t i = 0; i < sizeof(system_dirs) / sizeof(*system_dirs); i++)
		if (under(path, system_dirs[i]))
			return system_dirs[i];
	return NULL;
}

int dst_policy_add_root(struct dst_policy *p, const char *dir, ferr_t *err)
{
	const char *sys;

	if (dir[0] != '/' || strstr(dir, "/../") || !strcmp(dir, "/"))
		return ferr_set(err, FX_USAGE,
				"rootfs-under: '%s' is not an absolute directory "
				"below /",
				dir);
	if ((sys = system_dir(dir)))
		return ferr_set(err, FX_USAGE,
				"rootfs-under: '%s' lies in the host's system directory %s", dir,
				sys);
	if (p->n_roots < 0)
		p->n_roots = 0;
	if (p->n_roots >= DST_ROOTS_MAX)
		return ferr_set(err, FX_USAGE, "rootfs-under: at most %d directories",
				DST_ROOTS_MAX);
	if (snprintf(p->roots[p->n_roots], PATH_MAX, "%s", dir) >= PATH_MAX)
		return ferr_set(err, FX_USAGE, "rootfs-under: path too long");
	p->n_roots++;
	return 0;
}

/* "A.B.C.D/N" into host-order address and prefix. */
static int parse_v4(const char *cidr, uint32_t *addr, int *prefix)
{
	char buf[64], *slash, *end;
	struct in_addr a;
	long n;

	if (snprintf(buf, sizeof(buf), "%s", cidr) >= (int)sizeof(buf) ||
	    !(slash = strchr(buf, '/')))
		return -1;
	*slash = '\0';
	errno = 0;
	n = strtol(slash + 1, &end, 10);
	if (errno || *end || end == slash + 1 || n < 1 || n > 32 ||
	    inet_pton(AF_INET, buf, &a) != 1)
		return -1;
	*addr = ntohl(a.s_addr);
	*prefix = (int)n;
	return 0;
}

static uint32_t mask_of(int prefix)
{
	return prefix >= 32 ? 0xffffffffu : ~(0xffffffffu >> prefix);
}

int dst_policy_add_subnet(struct dst_policy *p, const char *cidr, ferr_t *err)
{
	uint32_t a;
	int n;

	if (parse_v4(cidr, &a, &n) < 0 || n < 8)
		return ferr_set(err, FX_USAGE,
				"subnet: '%s' is not an IPv4 subnet A.B.C.D/N (N >= 8)", cidr);
	if (p->n_subnets >= DST_SUBNETS_MAX)
		return ferr_set(err, FX_USAGE, "subnet: at most %d", DST_SUBNETS_MAX);
	p->subnets[p->n_subnets].mask = mask_of(n);
	p->subnets[p->n_subnets].net = a & mask_of(n);
	p->subnets[p->n_subnets].prefix = n;
	p->n_subnets++;
	return 0;
}

/* ---- the root ---- */

/* The allowed directory i, resolved (a configured one that does not exist
 * allows nothing). */
static bool allowed_dir(const struct dst_policy *p, const char *state_dir, int i, char *out)
{
	char want[PATH_MAX];

	if (p->n_roots >= 0)
		snprintf(want, sizeof(want), "%s", p->roots[i]);
	else if (i == 0)
		snprintf(want, sizeof(want), "%s/roots", state_dir);
	else
		snprintf(want, sizeof(want), "/srv/ferry");
	return realpath(want, out) != NULL;
}

int dst_check_root(const struct dst_policy *p, const char *state_dir, const char *rootfs, char *out,
		   size_t out_size, ferr_t *err)
{
	char real[PATH_MAX], dir[PATH_MAX];
	int n = p->n_roots >= 0 ? p->n_roots : 2;
	struct stat st;

	if (rootfs[0] != '/' || !realpath(rootfs, real) || stat(real, &st) < 0 ||
	    !S_ISDIR(st.st_mode))
		return ferr_set(err, FX_CONFLICT, "root file system %s is not a directory here",
				rootfs);
	if (system_dir(real))
		return ferr_set(
		    err, FX_CONFLICT,
		    "root file system %s is (or lies in) a host system directory: refused", rootfs);
	for (int i = 0; i < n; i++)
		if (allowed_dir(p, state_dir, i, dir) && strcmp(real, dir) && under(real, dir) &&
		    strcmp(dir, "/"))
			return xsnprintf(out, out_size, err, "%s", real);
	return ferr_set(err, FX_CONFLICT,
			"root file system %s lies under no directory this agent allows for "
			"tenants' roots (rootfs-under in its configuration; default %s/roots "
			"and /srv/ferry)",
			rootfs, state_dir);
}

/* ---- the address ---- */

/* A gateway of this host's IPv4 routes equal to a; *hit gets whether. */
static int is_gateway(uint32_t a, bool *hit, ferr_t *err)
{
	struct nl_sock *sk = nl_socket_alloc();
	struct nl_cache *cache = NULL;
	struct nl_object *o;

	*hit = false;
	if (!sk || nl_connect(sk, NETLINK_ROUTE) < 0 ||
	    rtnl_route_alloc_cache(sk, AF_INET, 0, &cache) < 0) {
		if (sk)
			nl_socket_free(sk);
		return ferr_set(err, FX_HOST, "netlink: cannot read this host's routes");
	}
	for (o = nl_cache_get_first(cache); o && !*hit; o = nl_cache_get_next(o)) {
		struct rtnl_route *r = (struct rtnl_route *)o;
		for (int i = 0; i < rtnl_route_get_nnexthops(r) && !*hit; i++) {
			struct nl_addr *gw = rtnl_route_nh_get_gateway(rtnl_route_nexthop_n(r, i));
			if (gw && nl_addr_get_family(gw) == AF_INET && nl_addr_get_len(gw) == 4) {
				uint32_t g;
				memcpy(&g, nl_addr_get_binary_addr(gw), 4);
				*hit = ntohl(g) == a;
			}
		}
	}
	nl_cache_free(cache);
	nl_socket_free(sk);
	return 0;
}

int dst_check_addr(const struct dst_policy *p, const char *cidr, ferr_t *err)
{
	uint32_t a, m;
	int n, i;
	bool gw;

	if (parse_v4(cidr, &a, &n) < 0)
		return ferr_set(err, FX_CONFLICT, "address '%s' is not IPv4 A.B.C.D/N", cidr);
	m = mask_of(n);
	if (n < 31 && ((a & ~m) == 0 || (a & ~m) == ~m))
		return ferr_set(err, FX_CONFLICT,
				"address %s is its subnet's network or broadcast address", cidr);
	for (i = 0; i < p->n_subnets; i++)
		if ((a & p->subnets[i].mask) == p->subnets[i].net && n >= p->subnets[i].prefix)
			break;
	if (p->n_subnets > 0 && i == p->n_subnets)
		return ferr_set(err, FX_CONFLICT,
				"address %s lies in no tenant subnet this agent is configured for "
				"(subnet in its configuration)",
				cidr);
	if (is_gateway(a, &gw, err) < 0)
		return -1;
	if (gw)
		return ferr_set(err, FX_CONFLICT, "address %s is a gateway of this host: refused",
				cidr);
	/* in a subnet of this host's interfaces, and not its own address */
	if (net_check_movable(cidr, err) < 0) {
		err->code = FX_CONFLICT;
		return -1;
	}
	return 0;
}

/* ---- BEGIN, then the manifest against it ---- */

static bool ifname_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= IFNAMSIZ || !strcmp(s, ".") || !strcmp(s, ".."))
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] == '/' || s[i] == ':' || s[i] <= ' ' || s[i] > '~')
			return false;
	return true;
}

static int check_kind(const struct dst_policy *p, enum tenant_kind kind, ferr_t *err)
{
	if (kind > 0 && kind < 32 && (p->kinds & (1u << kind)))
		return 0;
	return ferr_set(err, FX_CONFLICT,
			"this agent takes no %s tenants from peers (kinds in its configuration)",
			tenant_kind_str(kind));
}

/* --copy-rootfs: rootfs is made here; its parent must exist and the new
 * directory lie under one this agent allows for tenants' roots. */
static int new_root(const struct dst_policy *p, const char *state_dir, const char *rootfs,
		    ferr_t *err)
{
	char parent[PATH_MAX], real[PATH_MAX], dir[PATH_MAX];
	const char *base = strrchr(rootfs, '/');
	int n = p->n_roots >= 0 ? p->n_roots : 2;

	if (rootfs[0] != '/' || !base || !base[1] || !strcmp(base + 1, "..") ||
	    !strcmp(base + 1, ".") || base - rootfs >= (long)sizeof(parent))
		return ferr_set(err, FX_CONFLICT, "root file system %s: not a new directory path",
				rootfs);
	snprintf(parent, sizeof(parent), "%.*s", (int)(base - rootfs), rootfs);
	if (!realpath(parent[0] ? parent : "/", real) ||
	    xsnprintf(parent, sizeof(parent), err, "%s/%s", real, base + 1) < 0)
		return ferr_set(err, FX_CONFLICT, "root file system %s: its parent is missing here",
				rootfs);
	if (system_dir(parent))
		return ferr_set(err, FX_CONFLICT,
				"root file system %s lies in a host system directory: refused",
				rootfs);
	for (int i = 0; i < n; i++)
		if (allowed_dir(p, state_dir, i, dir) && under(parent, dir) && strcmp(dir, "/"))
			return 0;
	return ferr_set(err, FX_CONFLICT,
			"root file system %s lies under no directory this agent allows for "
			"tenants' roots (rootfs-under in its configuration)",
			rootfs);
}

int dst_check_begin(const struct dst_policy *p, const char *state_dir, const char *host,
		    const Ferry__Wire__MigrateBegin *b, enum tenant_kind kind,
		    struct dst_intake *in, ferr_t *err)
{
	const char *addr = b->net_addr ? b->net_addr : "";

	memset(in, 0, sizeof(*in));
	if (check_kind(p, kind, err) < 0)
		return -1;
	struct stat st;
	/* a tenant whose files travel (migrate/dst_fs.h): an image tenant's root
	 * is this host's own overlay; --copy-rootfs makes a new directory */
	bool carried = b->has_carry_fs && b->carry_fs;
	const struct tenant_kind_ops *ops = kind_find(kind);
	bool has_root = ops && ops->has_root;
	if (carried && b->has_copy_rootfs && b->copy_rootfs) {
		if (new_root(p, state_dir, b->rootfs ? b->rootfs : "", err) < 0)
			return -1;
	} else if (carried) {
		/* nothing of the peer's path is used */
	} else if (has_root && (!b->rootfs || stat(b->rootfs, &st) < 0 || !S_ISDIR(st.st_mode)))
		return ferr_set(err, FX_CONFLICT,
				"root file system %s of tenant %s is missing on %s (migrate with "
				"--copy-rootfs to copy the tree)",
				b->rootfs && *b->rootfs ? b->rootfs : "(none)", b->tenant, host);
	if (!carried && (has_root || (b->rootfs && *b->rootfs))) {
		if (dst_check_root(p, state_dir, b->rootfs ? b->rootfs : "", in->root,
				   sizeof(in->root), err) < 0)
			return -1;
	}
	if (b->tenant_if && *b->tenant_if && !ifname_ok(b->tenant_if))
		return ferr_set(err, FX_CONFLICT, "bad tenant interface name");
	/* the host side's MAC from the source: a unicast address, or nothing */
	if (b->has_host_if_mac && (b->host_if_mac.len != 6 || (b->host_if_mac.data[0] & 1) ||
				   !memcmp(b->host_if_mac.data, "\0\0\0\0\0\0", 6)))
		return ferr_set(err, FX_CONFLICT,
				"bad host interface MAC address (not a unicast address)");
	if (!*addr)
		return 0;
	if (dst_check_addr(p, addr, err) < 0)
		return ferr_wrap(err, "cannot get its address on %s", host);
	/* named here under the host's own rule, never the peer's string */
	net_host_ifname(b->tenant, in->host_if);
	if (if_nametoindex(in->host_if))
		return ferr_set(err, FX_CONFLICT,
				"the host interface %s for tenant %s exists already here",
				in->host_if, b->tenant);
	return 0;
}

static bool same_str(const char *a, const char *b)
{
	return !strcmp(a ? a : "", b ? b : "");
}

/* BEGIN's command, when it sent one, is the manifest's. */
static bool same_argv(const manifest_t *m, const Ferry__Wire__MigrateBegin *b)
{
	if (b->n_argv == 0)
		return true;
	if (m->n_argv != b->n_argv)
		return false;
	for (size_t i = 0; i < b->n_argv; i++)
		if (!same_str(m->argv[i], b->argv[i]))
			return false;
	return true;
}

int dst_check_manifest(const struct dst_policy *p, const char *state_dir, const char *dir,
		       const Ferry__Wire__MigrateBegin *b, enum tenant_kind kind, ferr_t *err)
{
	manifest_t *m = NULL;
	enum tenant_kind mk;
	const char *what = NULL;
	char root[PATH_MAX];

	if (manifest_read(dir, &m, err) < 0)
		return -1;
	if (tenant_kind_from_pb(m->kind, &mk) < 0 || mk != kind)
		what = "kind";
	else if (!same_str(m->tenant_name, b->tenant))
		what = "tenant name";
	else if (!same_str(m->rootfs, b->rootfs))
		what = "root file system";
	else if (!same_str(m->net ? m->net->addr : NULL, b->net_addr))
		what = "address";
	else if ((b->tenant_if && *b->tenant_if) &&
		 !same_str(m->net ? m->net->tenant_if : NULL, b->tenant_if))
		what = "tenant interface";
	else if (m->net && m->net->tenant_if && *m->net->tenant_if && !ifname_ok(m->net->tenant_if))
		what = "tenant interface";
	else if (!same_argv(m, b))
		what = "command";
	if (what) {
		manifest_free(m);
		return ferr_set(err, FX_INTEGRITY,
				"the manifest does not describe the tenant MIGRATE_BEGIN announced "
				"(its %s differs): nothing was restored",
				what);
	}
	/* the root again: shared storage may have changed under us */
	int r = 0;
	if (m->rootfs && *m->rootfs && !(b->image_id && *b->image_id))
		r = dst_check_root(p, state_dir, m->rootfs, root, sizeof(root), err);
	manifest_free(m);
	return r;
}

int dst_check_idrange(const char *state_dir, const Ferry__Wire__MigrateBegin *b,
		      const struct tenant_iso *iso, bool *remap, ferr_t *err)
{
	/* a tree on shared storage is shifted too: a failed restore shifts it
	 * back before the source resumes (docs/isolation.md) */
	if (iso_precheck_remap(state_dir, b->tenant, iso, true, remap, err) < 0)
		return -1;
	if (*remap)
		pr_info("tenant %s: its ID range %u-%u is taken here: the restore re-maps it",
			b->tenant, iso->id_base, iso->id_base + iso->id_count - 1);
	return 0;
}
