/* Wire enums <-> ferry's enums (wire_enums.h). */
#include "migrate/wire_enums.h"

Ferry__Wire__MigrationMode mode_to_wire(enum mig_mode m)
{
	switch (m) {
	case MIG_PRE_COPY:
		return FERRY__WIRE__MIGRATION_MODE__MODE_PRE_COPY;
	case MIG_POST_COPY:
		return FERRY__WIRE__MIGRATION_MODE__MODE_POST_COPY;
	case MIG_STOP_COPY:
	case MIG_AUTO:
	default:
		return FERRY__WIRE__MIGRATION_MODE__MODE_STOP_COPY;
	}
}

int mode_from_wire(Ferry__Wire__MigrationMode w, enum mig_mode *m)
{
	switch (w) {
	case FERRY__WIRE__MIGRATION_MODE__MODE_STOP_COPY:
		*m = MIG_STOP_COPY;
		return 0;
	case FERRY__WIRE__MIGRATION_MODE__MODE_PRE_COPY:
		*m = MIG_PRE_COPY;
		return 0;
	case FERRY__WIRE__MIGRATION_MODE__MODE_POST_COPY:
		*m = MIG_POST_COPY;
		return 0;
	default:
		return -1;
	}
}

Ferry__Wire__Verdict verdict_to_wire(enum mig_verdict v)
{
	switch (v) {
	case MV_COMMIT:
		return FERRY__WIRE__VERDICT__VERDICT_COMMIT;
	case MV_ABORT:
		return FERRY__WIRE__VERDICT__VERDICT_ABORT;
	case MV_PENDING:
		return FERRY__WIRE__VERDICT__VERDICT_PENDING;
	case MV_UNKNOWN:
	default:
		return FERRY__WIRE__VERDICT__VERDICT_UNKNOWN;
	}
}

int verdict_from_wire(Ferry__Wire__Verdict w, enum mig_verdict *v)
{
	switch (w) {
	case FERRY__WIRE__VERDICT__VERDICT_COMMIT:
		*v = MV_COMMIT;
		return 0;
	case FERRY__WIRE__VERDICT__VERDICT_ABORT:
		*v = MV_ABORT;
		return 0;
	case FERRY__WIRE__VERDICT__VERDICT_PENDING:
		*v = MV_PENDING;
		return 0;
	case FERRY__WIRE__VERDICT__VERDICT_UNKNOWN:
		*v = MV_UNKNOWN;
		return 0;
	default:
		return -1;
	}
}

int begin_kind_mode(const Ferry__Wire__MigrateBegin *b, enum tenant_kind *k, enum mig_mode *m,
		    ferr_t *err)
{
	if (!b->has_kind || tenant_kind_from_pb(b->kind, k) < 0)
		return ferr_set(err, FX_INTEGRITY, "MIGRATE_BEGIN without a known tenant kind (%d)",
				b->has_kind ? (int)b->kind : 0);
	if (!b->has_mode || mode_from_wire(b->mode, m) < 0)
		return ferr_set(err, FX_INTEGRITY, "MIGRATE_BEGIN without a known mode (%d)",
				b->has_mode ? (int)b->mode : 0);
	return 0;
}
