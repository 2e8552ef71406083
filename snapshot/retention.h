/* Which snapshots a retention policy keeps, with restic's semantics
 * (`restic forget --keep-*`): the policies are ORed; snapshots are taken
 * newest first; --keep-last N keeps the N newest; --keep-hourly N keeps the
 * newest snapshot of each of the N most recent hours that have one (daily,
 * weekly: ISO weeks, monthly, yearly alike, in local time); when a bucket
 * policy still has count left at the oldest snapshot, that one is kept too
 * (the longest history); --keep-within D keeps every snapshot less than D
 * older than the newest. A count of -1 means unlimited. Pure code. */
#ifndef FERRY_RETENTION_H
#define FERRY_RETENTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"

struct keep_policy {
	int last, hourly, daily, weekly, monthly, yearly; /* 0: none, -1: unlimited */
	int64_t within;					  /* seconds, 0: none */
};

enum keep_reason {
	KEEP_LAST = 1 << 0,
	KEEP_HOURLY = 1 << 1,
	KEEP_DAILY = 1 << 2,
	KEEP_WEEKLY = 1 << 3,
	KEEP_MONTHLY = 1 << 4,
	KEEP_YEARLY = 1 << 5,
	KEEP_WITHIN = 1 << 6,
};

struct keep_item {
	int64_t time;	  /* in: seconds since the epoch */
	bool keep;	  /* out */
	unsigned reasons; /* out: enum keep_reason bits */
};

/* Whether the policy keeps anything at all (an empty one removes nothing:
 * the caller refuses it). */
bool retention_empty(const struct keep_policy *p);
/* Decide keep and reasons for every item (any order; items of the same
 * second count as listed, oldest first). */
int retention_apply(const struct keep_policy *p, struct keep_item *items, size_t n, ferr_t *err);
/* "last, daily" into buf. */
const char *retention_reasons(unsigned reasons, char *buf, size_t len);
/* "30s", "10m", "6h", "1d", "2w", "1y" (y 365 days; m is minutes) and
 * combinations like "1d12h": seconds. */
int parse_duration(const char *s, int64_t *out, ferr_t *err);

#endif
