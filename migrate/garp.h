/* Gratuitous ARP: after a tenant resumed on this host, tell the LAN that its
 * address is now reached through this host (the host answers ARP for it by
 * proxy ARP; see net.h). Sent on every interface whose IPv4 subnet holds the
 * address, except the tenant's own veth. */
#ifndef FERRY_GARP_H
#define FERRY_GARP_H

#include "err.h"

/* Returns the number of interfaces announced on (0: none in that subnet). */
int garp_announce(const char *addr_cidr, const char *exclude_if, ferr_t *err);

#endif
