/* The typed fields of the migration messages (proto/wire.proto:
 * MigrationMode, Verdict) and ferry's own enums: the one place each pair is
 * mapped (the tenant kind's is tenant_kind_to_pb/_from_pb, tenant/registry.h).
 * A value from a peer that this build does not know is a protocol error
 * (protobuf-c stores any integer in an enum field). */
#ifndef FERRY_WIRE_ENUMS_H
#define FERRY_WIRE_ENUMS_H

#include "lib/err.h"
#include "migrate/migrate.h"
#include "migrate/reconcile.h"
#include "proto/wire.pb-c.h"
#include "tenant/registry.h"

/* m is a resolved mode: MIG_AUTO is never sent (it maps to stop-copy).
 * The _from_wire helpers return -1 for a value this build does not know. */
Ferry__Wire__MigrationMode mode_to_wire(enum mig_mode m);
int mode_from_wire(Ferry__Wire__MigrationMode w, enum mig_mode *m);

Ferry__Wire__Verdict verdict_to_wire(enum mig_verdict v);
int verdict_from_wire(Ferry__Wire__Verdict w, enum mig_verdict *v);

/* A MIGRATE_BEGIN's kind and mode (both required): FX_INTEGRITY naming the
 * field when one is absent or unknown. */
int begin_kind_mode(const Ferry__Wire__MigrateBegin *b, enum tenant_kind *k, enum mig_mode *m,
		    ferr_t *err);

#endif
