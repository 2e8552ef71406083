/* Held packets: the TCP segments that reach a tenant's address while it is
 * frozen for a move, replayed to its new host as soon as it runs there.
 *
 * Without them a client waits the downtime plus a retransmission timeout:
 * what it sent during the freeze was dropped (CRIU's network lock), and its
 * TCP retransmits only when its timer fires (>= 200 ms after the send, then
 * doubling; a SYN after 1 s). Replayed, the restored sockets see those
 * segments at once: a request is answered, a SYN gets its SYN-ACK.
 *
 * A copy of each segment is taken on this host's side (an AF_PACKET socket on
 * every interface, a BPF filter: IPv4, TCP, destination the tenant's
 * address; only frames addressed to this host, so not the tenant's own or
 * what this host sends), while the original goes on to be dropped as before.
 * Only TCP: a segment the tenant had already received before the lock is
 * discarded by its TCP as a duplicate, so nothing reaches the application
 * twice; datagrams (UDP) have no such guard and are never replayed.
 * Replay: each segment, checksums recomputed (a local sender's checksum may
 * be left to an offload that no longer happens), sent over the interface the
 * destination host is reached on, to its MAC address (this host's neighbour
 * table): it forwards them to the tenant by its /32 route. Best effort: a
 * segment that cannot be sent is left to the client's retransmission.
 * A segment held more than once (the sender's retransmissions during a long
 * freeze: a SYN at 1, 3, 7 s...; a frame that went round between hosts) is
 * replayed once, as its latest copy, where the last copy came: a listener
 * gets one SYN per client, not a burst of every retry (its queue would drop
 * the surplus and send those clients into their next, backed-off, retry),
 * and the newest timestamp gives the client an RTT sample of the time since
 * its last retry rather than the whole freeze. */
#ifndef FERRY_PKTHOLD_H
#define FERRY_PKTHOLD_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"

struct pkthold;

struct pkthold_stats {
	unsigned held;	  /* segments read from the hold */
	unsigned sent;	  /* replayed */
	unsigned again;	  /* copies of a segment held more than once (replayed once) */
	unsigned dropped; /* lost by the hold (its buffer was full) */
	unsigned unsent;  /* distinct segments the interface did not take */
};

/* Off (the old behaviour: the client's own retransmission) when the
 * environment has FERRY_PACKET_REPLAY=0. */
bool pkthold_enabled(void);
/* Start holding copies of the TCP segments to addr_cidr's address. */
struct pkthold *pkthold_start(const char *addr_cidr, ferr_t *err);
/* Replay what was held up to now to the host with address via (st: what
 * happened). Fails when via's MAC address is unknown here. */
int pkthold_replay(struct pkthold *h, const struct in_addr *via, struct pkthold_stats *st,
		   ferr_t *err);
/* Both checksums of a whole, unfragmented IPv4/TCP packet of n bytes,
 * computed again in place; false (untouched) when it is not one. */
bool pkthold_fix_checksums(uint8_t *p, size_t n);
/* Which of n held whole IPv4/TCP packets (in the order they came; each
 * aligned for its headers) to
 * replay: keep[i] is true for the latest copy of each segment, false for
 * the copies before it (same addresses, ports, sequence and acknowledgement
 * numbers, flags and payload length). Returns how many are kept. */
size_t pkthold_pick_latest(uint8_t *const *pkts, size_t n, bool *keep);
/* Stop holding (NULL is fine); what is still held is forgotten. */
void pkthold_free(struct pkthold *h);

#endif
