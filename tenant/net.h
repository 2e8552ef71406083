/* Tenant network plumbing through libnl-route (no shelling out to `ip`).
 * Model: the tenant has its own network namespace with one veth end
 * (tenant_if, usually "eth0") holding the tenant's address and an on-link
 * default route; the host end (host_if) is up with proxy ARP and a /32 route
 * to the tenant's address, so the address moves with the tenant. */
#ifndef FERRY_NET_H
#define FERRY_NET_H

#include <stdbool.h>
#include <sys/types.h>

#include "lib/err.h"

/* Create the veth pair host_if <-> tenant_if, move tenant_if into the network
 * namespace of pid, and configure both sides (net_tenant_configure +
 * net_host_plumb). */
int net_setup_tenant(pid_t pid, const char *host_if, const char *tenant_if, const char *addr_cidr,
		     ferr_t *err);
/* Inside pid's network namespace: lo up, tenant_if up with addr_cidr and an
 * on-link default route. */
int net_tenant_configure(pid_t pid, const char *tenant_if, const char *addr_cidr, ferr_t *err);
/* Inside pid's network namespace: lo up (every tenant has it, with or
 * without an address of its own: servers talk to themselves on 127.0.0.1). */
int net_tenant_lo_up(pid_t pid, ferr_t *err);
/* Host side of an existing veth (e.g. created by CRIU on restore): up, proxy
 * ARP, route ADDR/32 dev host_if. Idempotent; FX_CONFLICT when ADDR/32 is
 * routed through another interface. */
int net_host_plumb(const char *host_if, const char *addr_cidr, ferr_t *err);
/* Remove the route and delete host_if (and with it the pair). Missing is fine. */
int net_host_unplumb(const char *host_if, const char *addr_cidr, ferr_t *err);
/* Cut the tenant off, keeping the pair: remove the ADDR/32 route and take
 * host_if down (nothing passes the veth either way). net_host_plumb undoes it. */
int net_host_cut(const char *host_if, const char *addr_cidr, ferr_t *err);
/* While a tenant's address moves away from this host (on: from its freeze;
 * off: once the move ended either way): a blackhole route to ADDR/32 behind
 * the tenant's own route (a higher metric). Once that route goes with the
 * tenant's veth, this host drops what still comes for the address (the
 * packet hold has its copy) instead of forwarding it back onto the segment,
 * where the other host, its own route not there yet, may send it back: a
 * loop until the TTL runs out, seen as each segment held dozens of times
 * during post-copy moves under a connection storm. Off when none: fine. */
int net_hold_route(const char *addr_cidr, bool on, ferr_t *err);
/* Before creating anything: addr_cidr is a valid IPv4 ADDR/PREFIX, host_if
 * does not exist, and no route to ADDR/32 exists on this host (FX_USAGE,
 * FX_CONFLICT otherwise). net_setup_tenant checks this too. */
int net_check_config(const char *host_if, const char *addr_cidr, ferr_t *err);
/* The network model can carry addr_cidr's address on this host: some
 * interface of this host has an IPv4 address whose subnet holds it (the
 * tenant's clients are on that L2 segment; proxy ARP answers for the tenant
 * there, and a gratuitous ARP after a move redirects them). FX_HOST with what
 * to do when no subnet holds it, FX_CONFLICT when it is a host address,
 * FX_USAGE when addr_cidr is malformed. */
int net_check_movable(const char *addr_cidr, ferr_t *err);
/* A user-namespace tenant's restore cannot create a veth pair reaching into
 * the host's namespace (CRIU: "couldn't restore veth ... via usernsd"): this
 * makes the pair host_if <-> tmp_if here, for CRIU to move tmp_if into the
 * tenant's namespace under its old name, MAC and index (CRIU's netdev[]
 * external). tmp_if is derived from host_if; a stale one is replaced. */
int net_veth_precreate(const char *host_if, char tmp_if[16], ferr_t *err);
/* Derive a host interface name for a tenant ("fy-" + name, at most 15 chars,
 * unique by a short hash when the name is long). */
void net_host_ifname(const char *tenant, char out[16]);

#endif
