/* Tenant network plumbing through libnl-route: a veth pair, the tenant end
 * inside the tenant's network namespace, the host end with proxy ARP and a
 * /32 route (see net.h). */
#define LOG_PREFIX "net"
#include "tenant/net.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/veth.h>
#include <netlink/route/route.h>

#include "lib/log.h"
#include "lib/util.h"

static int nl_fail(ferr_t *err, int nlerr, const char *fmt, const char *what)
{
	char m[256];

	snprintf(m, sizeof(m), fmt, what);
	return ferr_set(err, nlerr == -NLE_EXIST ? FX_CONFLICT : FX_FAIL, "%s: %s", m,
			nl_geterror(nlerr));
}

static struct nl_sock *nl_open(ferr_t *err)
{
	struct nl_sock *sk = nl_socket_alloc();
	int r;

	if (!sk) {
		ferr_set(err, FX_FAIL, "netlink: out of memory");
		return NULL;
	}
	if ((r = nl_connect(sk, NETLINK_ROUTE)) < 0) {
		nl_fail(err, r, "%s", "netlink connect");
		nl_socket_free(sk);
		return NULL;
	}
	return sk;
}

/* "A.B.C.D/N" -> address object with prefix N (IPv4 only). */
static int parse_cidr(const char *cidr, struct nl_addr **out, ferr_t *err)
{
	const char *slash = strchr(cidr, '/');
	struct nl_addr *a = NULL;

	if (!slash || nl_addr_parse(cidr, AF_INET, &a) < 0 || nl_addr_get_family(a) != AF_INET ||
	    nl_addr_get_prefixlen(a) < 1 || nl_addr_get_prefixlen(a) > 32) {
		if (a)
			nl_addr_put(a);
		return ferr_set(err, FX_USAGE,
				"bad address '%s': expected IPv4 ADDR/PREFIX, e.g. "
				"10.201.0.2/24",
				cidr);
	}
	*out = a;
	return 0;
}

static int link_up(struct nl_sock *sk, const char *ifname, int *ifindex, ferr_t *err)
{
	struct rtnl_link *link = NULL, *chg;
	int r;

	if ((r = rtnl_link_get_kernel(sk, 0, ifname, &link)) < 0)
		return nl_fail(err, r, "find interface %s", ifname);
	if (ifindex)
		*ifindex = rtnl_link_get_ifindex(link);
	chg = rtnl_link_alloc();
	if (!chg) {
		rtnl_link_put(link);
		return ferr_set(err, FX_FAIL, "netlink: out of memory");
	}
	rtnl_link_set_flags(chg, IFF_UP);
	r = rtnl_link_change(sk, link, chg, 0);
	rtnl_link_put(chg);
	rtnl_link_put(link);
	return r < 0 ? nl_fail(err, r, "set %s up", ifname) : 0;
}

/* Route dst dev ifindex, scope link; replace any existing one. del: delete it. */
static int route_link(struct nl_sock *sk, struct nl_addr *dst, int ifindex, bool del, ferr_t *err)
{
	struct rtnl_route *rt = rtnl_route_alloc();
	struct rtnl_nexthop *nh = rtnl_route_nh_alloc();
	int r;

	if (!rt || !nh) {
		if (rt)
			rtnl_route_put(rt);
		if (nh)
			rtnl_route_nh_free(nh);
		return ferr_set(err, FX_FAIL, "netlink: out of memory");
	}
	rtnl_route_set_family(rt, AF_INET);
	rtnl_route_set_table(rt, RT_TABLE_MAIN);
	rtnl_route_set_scope(rt, RT_SCOPE_LINK);
	rtnl_route_set_protocol(rt, RTPROT_BOOT);
	rtnl_route_set_type(rt, RTN_UNICAST);
	rtnl_route_set_dst(rt, dst);
	rtnl_route_nh_set_ifindex(nh, ifindex);
	rtnl_route_add_nexthop(rt, nh); /* rt owns nh now */
	r = del ? rtnl_route_delete(sk, rt, 0) : rtnl_route_add(sk, rt, NLM_F_REPLACE);
	rtnl_route_put(rt);
	if (r < 0) {
		char a[64];
		nl_addr2str(dst, a, sizeof(a));
		return nl_fail(err, r, del ? "delete route %s" : "add route %s", a);
	}
	return 0;
}

/* net_hold_route's blackhole: behind any tenant's own route (metric 0). */
#define HOLD_PRIORITY 65000

int net_hold_route(const char *addr_cidr, bool on, ferr_t *err)
{
	struct nl_addr *dst = NULL;
	struct rtnl_route *rt = NULL;
	struct nl_sock *sk = NULL;
	int r = -1, nr;

	if (parse_cidr(addr_cidr, &dst, err) < 0)
		return -1;
	nl_addr_set_prefixlen(dst, 32);
	if (!(rt = rtnl_route_alloc())) {
		ferr_set(err, FX_FAIL, "netlink: out of memory");
		goto out;
	}
	if (!(sk = nl_open(err)))
		goto out;
	rtnl_route_set_family(rt, AF_INET);
	rtnl_route_set_table(rt, RT_TABLE_MAIN);
	rtnl_route_set_type(rt, RTN_BLACKHOLE);
	rtnl_route_set_protocol(rt, RTPROT_BOOT);
	rtnl_route_set_priority(rt, HOLD_PRIORITY);
	rtnl_route_set_dst(rt, dst);
	nr = on ? rtnl_route_add(sk, rt, NLM_F_REPLACE) : rtnl_route_delete(sk, rt, 0);
	if (nr < 0 && !(!on && (nr == -NLE_OBJ_NOTFOUND || nr == -NLE_NOADDR)))
		nl_fail(err, nr, on ? "add blackhole route %s" : "delete blackhole route %s",
			addr_cidr);
	else
		r = 0;
out:
	if (sk)
		nl_socket_free(sk);
	if (rt)
		rtnl_route_put(rt);
	nl_addr_put(dst);
	return r;
}

/* Interface index of the main-table route to exactly dst, 0 when none
 * (net_hold_route's blackhole is not one: it has no next hop). */
static int route_owner(struct nl_sock *sk, struct nl_addr *dst, int *oif, ferr_t *err)
{
	struct nl_cache *cache = NULL;
	int r;

	*oif = 0;
	if ((r = rtnl_route_alloc_cache(sk, AF_INET, 0, &cache)) < 0)
		return nl_fail(err, r, "%s", "list routes");
	for (struct nl_object *o = nl_cache_get_first(cache); o && !*oif;
	     o = nl_cache_get_next(o)) {
		struct rtnl_route *rt = (struct rtnl_route *)o;
		struct nl_addr *d = rtnl_route_get_dst(rt);
		if (rtnl_route_get_table(rt) != RT_TABLE_MAIN || !d ||
		    nl_addr_get_prefixlen(d) != nl_addr_get_prefixlen(dst) ||
		    nl_addr_cmp_prefix(d, dst) != 0 || rtnl_route_get_nnexthops(rt) < 1)
			continue;
		*oif = rtnl_route_nh_get_ifindex(rtnl_route_nexthop_n(rt, 0));
		if (!*oif)
			*oif = -1; /* a route without device (blackhole, via gateway...) */
	}
	nl_cache_free(cache);
	return 0;
}

/* ADDR/32 must not be routed through another interface than ifindex (0: any). */
static int route_free(struct nl_sock *sk, struct nl_addr *dst32, int ifindex, ferr_t *err)
{
	char a[64], dev[IF_NAMESIZE] = "another route";
	int oif;

	if (route_owner(sk, dst32, &oif, err) < 0)
		return -1;
	if (!oif || oif == ifindex)
		return 0;
	if (oif > 0 && !if_indextoname((unsigned)oif, dev))
		snprintf(dev, sizeof(dev), "if%d", oif);
	nl_addr2str(dst32, a, sizeof(a));
	return ferr_set(err, FX_CONFLICT,
			"address %s is already routed to %s on this host (another tenant has it?)",
			a, dev);
}

/* Run fn inside pid's network namespace (this thread only), then come back. */
static int in_netns(pid_t pid, int (*fn)(void *arg, ferr_t *err), void *arg, ferr_t *err)
{
	char p[64];
	int self, target, r;

	snprintf(p, sizeof(p), "/proc/%d/ns/net", (int)pid);
	self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (self < 0)
		return ferr_sys(err, FX_FAIL, "open own network namespace");
	target = open(p, O_RDONLY | O_CLOEXEC);
	if (target < 0) {
		close(self);
		return ferr_sys(err, FX_NOTFOUND, "open network namespace of process %d", (int)pid);
	}
	if (setns(target, CLONE_NEWNET) < 0) {
		r = ferr_sys(err, FX_FAIL, "enter network namespace of process %d", (int)pid);
	} else {
		r = fn(arg, err);
		if (setns(self, CLONE_NEWNET) < 0) /* cannot go on in the wrong namespace */
			r = ferr_sys(err, FX_FAIL, "return to the host network namespace");
	}
	close(target);
	close(self);
	return r;
}

struct tenant_cfg {
	const char *ifname;
	const char *cidr;
};

static int tenant_configure_here(void *arg, ferr_t *err)
{
	struct tenant_cfg *c = arg;
	struct nl_addr *local = NULL, *def = NULL;
	struct rtnl_addr *ad = NULL;
	struct nl_sock *sk;
	int ifindex, r = -1, nr;

	if (!(sk = nl_open(err)))
		return -1;
	if (parse_cidr(c->cidr, &local, err) < 0)
		goto out;
	if (link_up(sk, "lo", NULL, err) < 0 || link_up(sk, c->ifname, &ifindex, err) < 0)
		goto out;
	if (!(ad = rtnl_addr_alloc())) {
		ferr_set(err, FX_FAIL, "netlink: out of memory");
		goto out;
	}
	rtnl_addr_set_ifindex(ad, ifindex);
	rtnl_addr_set_local(ad, local);
	if ((nr = rtnl_addr_add(sk, ad, NLM_F_REPLACE)) < 0 && nr != -NLE_EXIST) {
		nl_fail(err, nr, "add address %s", c->cidr);
		goto out;
	}
	if ((nr = nl_addr_parse("0.0.0.0/0", AF_INET, &def)) < 0) {
		nl_fail(err, nr, "%s", "parse default route");
		goto out;
	}
	r = route_link(sk, def, ifindex, false, err);
out:
	if (def)
		nl_addr_put(def);
	if (ad)
		rtnl_addr_put(ad);
	if (local)
		nl_addr_put(local);
	nl_socket_free(sk);
	return r;
}

int net_tenant_configure(pid_t pid, const char *tenant_if, const char *addr_cidr, ferr_t *err)
{
	struct tenant_cfg c = {tenant_if, addr_cidr};

	if (in_netns(pid, tenant_configure_here, &c, err) < 0)
		return ferr_wrap(err, "configure %s in the tenant (pid %d)", tenant_if, (int)pid);
	return 0;
}

static int lo_up_here(void *arg, ferr_t *err)
{
	struct nl_sock *sk;
	int r;

	(void)arg;
	if (!(sk = nl_open(err)))
		return -1;
	r = link_up(sk, "lo", NULL, err);
	nl_socket_free(sk);
	return r;
}

int net_tenant_lo_up(pid_t pid, ferr_t *err)
{
	if (in_netns(pid, lo_up_here, NULL, err) < 0)
		return ferr_wrap(err, "loopback of the tenant (pid %d)", (int)pid);
	return 0;
}

static int write_sysctl(const char *fmt, const char *host_if, const char *val, ferr_t *err)
{
	char p[128];
	size_t n = strlen(val);

	snprintf(p, sizeof(p), fmt, host_if);
	int fd = open(p, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return ferr_sys(err, FX_FAIL, "open %s", p);
	if (write(fd, val, n) != (ssize_t)n) {
		ferr_sys(err, FX_FAIL, "write %s", p);
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

/* Proxy ARP on the host side, answered at once: the kernel delays proxied
 * ARP replies by up to neigh proxy_delay (0.8 s by default), and a tenant
 * restored on another host resolves its peers again: its first answers
 * waited that long (seen as 0.4-1.4 s gaps in its TCP peers' streams). */
static int write_proxy_arp(const char *host_if, ferr_t *err)
{
	if (write_sysctl("/proc/sys/net/ipv4/conf/%s/proxy_arp", host_if, "1\n", err) < 0)
		return -1;
	return write_sysctl("/proc/sys/net/ipv4/neigh/%s/proxy_delay", host_if, "0\n", err);
}

int net_host_plumb(const char *host_if, const char *addr_cidr, ferr_t *err)
{
	struct nl_addr *dst = NULL;
	struct nl_sock *sk;
	int ifindex, r = -1;

	if (parse_cidr(addr_cidr, &dst, err) < 0)
		return -1;
	nl_addr_set_prefixlen(dst, 32);
	if (!(sk = nl_open(err))) {
		nl_addr_put(dst);
		return -1;
	}
	if (link_up(sk, host_if, &ifindex, err) < 0 || route_free(sk, dst, ifindex, err) < 0 ||
	    write_proxy_arp(host_if, err) < 0 || route_link(sk, dst, ifindex, false, err) < 0)
		ferr_wrap(err, "host side %s of %s", host_if, addr_cidr);
	else
		r = 0;
	nl_socket_free(sk);
	nl_addr_put(dst);
	return r;
}

/* Remove the /32 route to ADDR_CIDR's address through ifindex, if any (it
 * may be gone already: no error). */
static void drop_host_route(struct nl_sock *sk, const char *addr_cidr, int ifindex)
{
	struct nl_addr *dst = NULL;

	if (addr_cidr && *addr_cidr && parse_cidr(addr_cidr, &dst, NULL) == 0) {
		nl_addr_set_prefixlen(dst, 32);
		route_link(sk, dst, ifindex, true, NULL);
		nl_addr_put(dst);
	}
}

int net_host_unplumb(const char *host_if, const char *addr_cidr, ferr_t *err)
{
	struct rtnl_link *link = NULL;
	struct nl_sock *sk;
	int r;

	if (!(sk = nl_open(err)))
		return -1;
	if ((r = rtnl_link_get_kernel(sk, 0, host_if, &link)) < 0) {
		nl_socket_free(sk);
		if (r == -NLE_NODEV || r == -NLE_OBJ_NOTFOUND)
			return 0; /* already gone: the pair dies with the tenant's netns */
		return nl_fail(err, r, "find interface %s", host_if);
	}
	drop_host_route(sk, addr_cidr, rtnl_link_get_ifindex(link));
	r = rtnl_link_delete(sk, link);
	rtnl_link_put(link);
	nl_socket_free(sk);
	if (r < 0 && r != -NLE_NODEV && r != -NLE_OBJ_NOTFOUND)
		return nl_fail(err, r, "delete interface %s", host_if);
	return 0;
}

int net_host_cut(const char *host_if, const char *addr_cidr, ferr_t *err)
{
	struct rtnl_link *link = NULL, *chg = NULL;
	struct nl_sock *sk;
	int r;

	if (!(sk = nl_open(err)))
		return -1;
	if ((r = rtnl_link_get_kernel(sk, 0, host_if, &link)) < 0) {
		nl_socket_free(sk);
		return nl_fail(err, r, "find interface %s", host_if);
	}
	drop_host_route(sk, addr_cidr, rtnl_link_get_ifindex(link));
	chg = rtnl_link_alloc();
	if (!chg) {
		r = -NLE_NOMEM;
	} else {
		rtnl_link_unset_flags(chg, IFF_UP);
		r = rtnl_link_change(sk, link, chg, 0);
		rtnl_link_put(chg);
	}
	rtnl_link_put(link);
	nl_socket_free(sk);
	return r < 0 ? nl_fail(err, r, "set %s down", host_if) : 0;
}

int net_check_config(const char *host_if, const char *addr_cidr, ferr_t *err)
{
	struct rtnl_link *old = NULL;
	struct nl_addr *dst = NULL;
	struct nl_sock *sk;
	int r = 0;

	if (parse_cidr(addr_cidr, &dst, err) < 0)
		return -1;
	nl_addr_set_prefixlen(dst, 32);
	if (!(sk = nl_open(err))) {
		nl_addr_put(dst);
		return -1;
	}
	if (rtnl_link_get_kernel(sk, 0, host_if, &old) == 0) {
		rtnl_link_put(old);
		r = ferr_set(
		    err, FX_CONFLICT,
		    "host interface %s already exists (a tenant with this name is running, "
		    "or a leftover: remove it with 'ip link del %s')",
		    host_if, host_if);
	} else {
		r = route_free(sk, dst, 0, err);
	}
	nl_socket_free(sk);
	nl_addr_put(dst);
	return r;
}

/* The subnets of this host's global IPv4 addresses, as "IF A.B.C.D/N, ..." in
 * list; *hit: 1 when one holds dst32, 2 when dst32 is one of them. */
static int subnets_holding(struct nl_sock *sk, struct nl_addr *dst32, int *hit, char *list,
			   size_t n, ferr_t *err)
{
	struct nl_cache *cache = NULL;
	size_t used = 0;
	int r;

	*hit = 0;
	list[0] = '\0';
	if ((r = rtnl_addr_alloc_cache(sk, &cache)) < 0)
		return nl_fail(err, r, "%s", "list addresses");
	for (struct nl_object *o = nl_cache_get_first(cache); o; o = nl_cache_get_next(o)) {
		struct rtnl_addr *ad = (struct rtnl_addr *)o;
		struct nl_addr *loc = rtnl_addr_get_local(ad);
		char a[64], dev[IF_NAMESIZE] = "?";
		if (rtnl_addr_get_family(ad) != AF_INET || !loc ||
		    rtnl_addr_get_scope(ad) != RT_SCOPE_UNIVERSE)
			continue;
		if (nl_addr_get_len(loc) == 4 &&
		    memcmp(nl_addr_get_binary_addr(loc), nl_addr_get_binary_addr(dst32), 4) == 0)
			*hit = 2;
		else if (!*hit && nl_addr_cmp_prefix(loc, dst32) == 0)
			*hit = 1;
		if_indextoname((unsigned)rtnl_addr_get_ifindex(ad), dev);
		nl_addr2str(loc, a, sizeof(a));
		if (used < n)
			used += (size_t)snprintf(list + used, n - used, "%s%s %s", used ? ", " : "",
						 dev, a);
	}
	nl_cache_free(cache);
	return 0;
}

int net_check_movable(const char *addr_cidr, ferr_t *err)
{
	struct nl_addr *dst = NULL;
	struct nl_sock *sk;
	char a[64], list[512];
	int hit = 0, r;

	if (parse_cidr(addr_cidr, &dst, err) < 0)
		return -1;
	nl_addr_set_prefixlen(dst, 32);
	nl_addr2str(dst, a, sizeof(a));
	if (!(sk = nl_open(err))) {
		nl_addr_put(dst);
		return -1;
	}
	r = subnets_holding(sk, dst, &hit, list, sizeof(list), err);
	nl_socket_free(sk);
	nl_addr_put(dst);
	if (r < 0)
		return -1;
	if (hit == 2)
		return ferr_set(err, FX_CONFLICT,
				"address %s is this host's own address (%s): give the tenant "
				"another one in the same subnet",
				a, list);
	if (hit == 0)
		return ferr_set(
		    err, FX_HOST,
		    "address %s is in no subnet of this host's interfaces (%s): after a move its "
		    "clients could not reach it (ferry's network model: tenant and clients on the "
		    "host interface's L2 segment, proxy ARP for the tenant, a gratuitous ARP after "
		    "a move); pick an address in a subnet that every host it may "
		    "move to has on that segment",
		    a, list[0] ? list : "none");
	return 0;
}

int net_setup_tenant(pid_t pid, const char *host_if, const char *tenant_if, const char *addr_cidr,
		     ferr_t *err)
{
	struct nl_sock *sk;
	int r;

	if (net_check_config(host_if, addr_cidr, err) < 0)
		return -1;
	if (!(sk = nl_open(err)))
		return -1;
	/* the peer is created directly inside the tenant's namespace under its name */
	r = rtnl_link_veth_add(sk, host_if, tenant_if, pid);
	nl_socket_free(sk);
	if (r < 0)
		return nl_fail(err, r, "create veth pair %s", host_if);
	if (net_tenant_configure(pid, tenant_if, addr_cidr, err) < 0 ||
	    net_host_plumb(host_if, addr_cidr, err) < 0) {
		net_host_unplumb(host_if, addr_cidr, NULL);
		return -1;
	}
	return 0;
}

int net_veth_precreate(const char *host_if, char tmp_if[16], ferr_t *err)
{
	struct nl_sock *sk;
	int r;

	/* "fy-NAME" -> "fz-NAME": as long, as unique */
	snprintf(tmp_if, 16, "fz%s", host_if[0] && host_if[1] ? host_if + 2 : host_if);
	if (net_host_unplumb(tmp_if, NULL, err) < 0)
		return -1;
	if (!(sk = nl_open(err)))
		return -1;
	r = rtnl_link_veth_add(sk, host_if, tmp_if, getpid()); /* both here */
	nl_socket_free(sk);
	if (r < 0)
		return nl_fail(err, r, "create veth pair %s", host_if);
	return 0;
}

void net_host_ifname(const char *tenant, char out[16])
{
	size_t n = strlen(tenant);
	uint32_t h = 2166136261u; /* FNV-1a */

	if (n <= 12) {
		snprintf(out, 16, "fy-%s", tenant);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)tenant[i];
		h *= 16777619u;
	}
	/* "fy-" + 7 chars + "-" + 4 hex = 15 */
	snprintf(out, 16, "fy-%.7s-%04x", tenant, (unsigned)(h & 0xffff));
}
