/* Gratuitous ARP: after a tenant resumed on this host, tell the LAN that its
 * address is now reached through this host (the host answers ARP for it by
 * proxy ARP; see net.h). Sent on every interface whose IPv4 subnet holds the
 * address, except the tenant's own veth. */
#ifndef FERRY_GARP_H
#define FERRY_GARP_H

#include <stdint.h>

#include "lib/err.h"

/* Returns the number of interfaces announced on (0: none in that subnet). */
int garp_announce(const char *addr_cidr, const char *exclude_if, ferr_t *err);

/* MAC address of an interface. The host side of a tenant's veth keeps its
 * MAC across hosts: the tenant's neighbour entries (its gateway for every
 * address, by proxy ARP) stay valid after a move, so its own packets flow at
 * once instead of after its ARP entries time out. */
int l2_get_mac(const char *ifname, uint8_t mac[6], ferr_t *err);
/* Set it (briefly taking the interface down if the driver insists). */
int l2_set_mac(const char *ifname, const uint8_t mac[6], ferr_t *err);

#endif
