/* Held packets (tenant/pkthold.h): the checksums of a replayed segment are
 * computed again (a local sender may have left its TCP checksum to an
 * offload, only the pseudo-header sum in place); what is not a whole
 * IPv4/TCP packet is left untouched. The expected values were computed
 * independently (RFC 1071 sum in Python). Copies of one segment (a sender's
 * retransmissions, a frame that went round) are replayed once, the latest. */
#include <arpa/inet.h>
#include <string.h>

#include "tenant/pkthold.h"
#include "unit.h"

/* 10.204.0.3:53024 -> 10.204.0.81:8080, PSH|ACK, "SEQ 7\n", id 0x1234, DF. */
static size_t segment(uint8_t *p)
{
	static const uint8_t ip[20] = {0x45, 0,	   0,  46,  0x12, 0x34, 0x40, 0,   64, 6,
				       0xde, 0xad, 10, 204, 0,	  3,	10,   204, 0,  81};
	static const uint8_t tcp[20] = {0xcf, 0x20, 0x1f, 0x90, 0,    0,    0x03, 0xe8, 0, 0,
					0x07, 0xd0, 0x50, 0x18, 0x01, 0xf6, 0xbe, 0xef, 0, 0};
	memcpy(p, ip, 20);
	memcpy(p + 20, tcp, 20);
	memcpy(p + 40, "SEQ 7\n", 6);
	return 46;
}

static void test_checksums(void)
{
	uint8_t p[64];
	size_t n = segment(p);

	CHECK(pkthold_fix_checksums(p, n));
	CHECK(p[10] == 0x12 && p[11] == 0xab); /* IPv4 header */
	CHECK(p[36] == 0xc2 && p[37] == 0x0c); /* TCP, pseudo-header included */
	/* again: the same (idempotent) */
	CHECK(pkthold_fix_checksums(p, n));
	CHECK(p[10] == 0x12 && p[11] == 0xab && p[36] == 0xc2 && p[37] == 0x0c);
}

static void test_not_whole_tcp(void)
{
	uint8_t p[64], q[64];
	size_t n = segment(p);

	memcpy(q, p, sizeof(q));
	CHECK(!pkthold_fix_checksums(p, n - 1)); /* truncated */
	CHECK(!pkthold_fix_checksums(p, 10));	 /* not even a header */
	p[6] = 0x20;				 /* more fragments */
	CHECK(!pkthold_fix_checksums(p, n));
	p[6] = 0x40;
	p[9] = 17; /* UDP: never replayed */
	CHECK(!pkthold_fix_checksums(p, n));
	p[9] = 6;
	p[0] = 0x65; /* not IPv4 */
	CHECK(!pkthold_fix_checksums(p, n));
	p[0] = 0x45;
	CHECK(memcmp(p, q, n) == 0); /* untouched */
}

/* Copies of a segment differ in IP id, TTL, window and checksums, not in
 * what the receiver's TCP acts on. */
static void test_pick_latest(void)
{
	uint8_t p[6][64];
	uint8_t *pk[6];
	bool keep[6];

	for (int i = 0; i < 6; i++) {
		segment(p[i]);
		pk[i] = p[i];
	}
	p[1][4] = 0x99, p[1][8] = 63, p[1][35] = 0x10; /* retransmission: id, TTL, window */
	p[2][27] = 0x04;			       /* another sequence number */
	p[3][21] = 0x21;			       /* another client port */
	p[4][33] = 0x11;			       /* other flags (ACK|FIN) */
	p[5][4] = 0x77;				       /* the first one again, newer */
	CHECK(pkthold_pick_latest(pk, 6, keep) == 4);
	CHECK(!keep[0] && !keep[1] && keep[5]); /* the latest of three copies */
	CHECK(keep[2] && keep[3] && keep[4]);
	CHECK(pkthold_pick_latest(pk, 1, keep) == 1 && keep[0]);
	CHECK(pkthold_pick_latest(pk, 0, keep) == 0);
	/* another payload length is another segment */
	p[1][3] = 45; /* tot_len 45: "SEQ 7" without its newline */
	CHECK(pkthold_pick_latest(pk, 2, keep) == 2 && keep[0] && keep[1]);
}

int main(void)
{
	RUN(test_checksums);
	RUN(test_not_whole_tcp);
	RUN(test_pick_latest);
	UNIT_DONE();
}
