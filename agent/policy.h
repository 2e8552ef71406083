/* The agent's configuration file: which peers (certificate names) may make
 * which requests (docs/security.md, "Agent configuration"). Lines:
 *   # comment
 *   allow REQUEST[,REQUEST...] PEER[,PEER...]
 * REQUEST is a request name of the table (send-set, migrate, resolve, pages,
 * query) or '*'; PEER a certificate name or '*'. A request is allowed when
 * some line names it and the peer. Without a file (NULL policy) every peer
 * the CA signed may make every request.
 * What peers may send (migrate/dst_check.h; defaults there when absent):
 *   kinds KIND[,KIND...]       tenant kinds peers may migrate in
 *   rootfs-under DIR [DIR...]  directories tenants' roots may lie under
 *   subnet CIDR [CIDR...]      tenant subnets for incoming addresses */
#ifndef FERRY_AGENT_POLICY_H
#define FERRY_AGENT_POLICY_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/err.h"
#include "migrate/dst_check.h"

struct policy;

/* Parse path; names: the request names known (a line naming another one is
 * an error, with its line number). */
struct policy *policy_load(const char *path, const char *const *names, size_t n_names, ferr_t *err);
void policy_free(struct policy *p);
/* p NULL: allowed. */
bool policy_allows(const struct policy *p, const char *request, const char *peer);
/* Its intake part: kinds, roots, subnets. */
const struct dst_policy *policy_intake(const struct policy *p);
/* How many allow rules (request, peer pairs) p has. */
size_t policy_rules(const struct policy *p);

#endif
