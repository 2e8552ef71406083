/* Held packets (pkthold.h): an AF_PACKET copy of the TCP segments to a
 * frozen tenant, replayed to its new host. */
#define LOG_PREFIX "pkthold"
#include "tenant/pkthold.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/filter.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <netinet/ip.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <netlink/netlink.h>
#include <netlink/route/neighbour.h>

#include "lib/log.h"

#define HOLD_BUF (32 << 20) /* the kernel's buffer for held segments */
#define SEEN_N	 (1u << 16) /* segments told apart per replay (a power of 2) */
#define P_MAX	 65536	    /* an IPv4 packet */

struct pkthold {
	int sk;
	struct in_addr addr;
};

bool pkthold_enabled(void)
{
	const char *v = getenv("FERRY_PACKET_REPLAY");

	return !v || strcmp(v, "0") != 0;
}

/* IPv4, protocol TCP, destination addr (network order); the socket is of
 * type SOCK_DGRAM, so the filter sees the packet from its IP header on. */
static int attach_filter(int sk, struct in_addr addr, ferr_t *err)
{
	struct sock_filter code[] = {
	    BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 9), /* protocol */
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, IPPROTO_TCP, 0, 3),
	    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 16), /* destination */
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ntohl(addr.s_addr), 0, 1),
	    BPF_STMT(BPF_RET | BPF_K, 0xffff),
	    BPF_STMT(BPF_RET | BPF_K, 0),
	};
	struct sock_fprog prog = {.len = sizeof(code) / sizeof(code[0]), .filter = code};

	if (setsockopt(sk, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)) < 0)
		return ferr_sys(err, FX_FAIL, "packet filter for held segments");
	return 0;
}

struct pkthold *pkthold_start(const char *addr_cidr, ferr_t *err)
{
	struct sockaddr_ll sll = {.sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_IP)};
	struct pkthold *h;
	char a[64];
	int buf = HOLD_BUF;

	snprintf(a, sizeof(a), "%s", addr_cidr);
	a[strcspn(a, "/")] = '\0';
	if (!(h = calloc(1, sizeof(*h)))) {
		ferr_set(err, FX_FAIL, "out of memory");
		return NULL;
	}
	if (inet_pton(AF_INET, a, &h->addr) != 1) {
		free(h);
		ferr_set(err, FX_USAGE, "not an IPv4 address: %s", addr_cidr);
		return NULL;
	}
	/* protocol 0 until the filter is on: nothing unfiltered is queued */
	h->sk = socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (h->sk < 0) {
		ferr_sys(err, FX_FAIL, "packet socket for held segments");
		free(h);
		return NULL;
	}
	if (setsockopt(h->sk, SOL_SOCKET, SO_RCVBUFFORCE, &buf, sizeof(buf)) < 0)
		setsockopt(h->sk, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
	if (attach_filter(h->sk, h->addr, err) < 0 ||
	    bind(h->sk, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
		if (!err || !err->code)
			ferr_sys(err, FX_FAIL, "binding the packet socket for held segments");
		pkthold_free(h);
		return NULL;
	}
	return h;
}

void pkthold_free(struct pkthold *h)
{
	if (!h)
		return;
	close(h->sk);
	free(h);
}

/* The MAC address and interface of the on-link neighbour via. */
static int neigh_of(const struct in_addr *via, uint8_t mac[ETH_ALEN], int *ifindex, ferr_t *err)
{
	struct nl_sock *sk = nl_socket_alloc();
	struct nl_cache *cache = NULL;
	char a[INET_ADDRSTRLEN];
	int found = 0;

	inet_ntop(AF_INET, via, a, sizeof(a));
	if (!sk || nl_connect(sk, NETLINK_ROUTE) < 0 || rtnl_neigh_alloc_cache(sk, &cache) < 0) {
		if (sk)
			nl_socket_free(sk);
		return ferr_set(err, FX_FAIL, "reading the neighbour table");
	}
	for (struct nl_object *o = nl_cache_get_first(cache); o && !found;
	     o = nl_cache_get_next(o)) {
		struct rtnl_neigh *n = (struct rtnl_neigh *)o;
		struct nl_addr *d = rtnl_neigh_get_dst(n), *ll = rtnl_neigh_get_lladdr(n);
		int st = rtnl_neigh_get_state(n);
		if (rtnl_neigh_get_family(n) != AF_INET || !d || !ll || nl_addr_get_len(d) != 4 ||
		    nl_addr_get_len(ll) != ETH_ALEN || memcmp(nl_addr_get_binary_addr(d), via, 4) ||
		    (st & (NUD_INCOMPLETE | NUD_FAILED)))
			continue;
		memcpy(mac, nl_addr_get_binary_addr(ll), ETH_ALEN);
		*ifindex = rtnl_neigh_get_ifindex(n);
		found = 1;
	}
	nl_cache_free(cache);
	nl_socket_free(sk);
	if (!found)
		return ferr_set(err, FX_FAIL,
				"no MAC address known for %s (not on this host's "
				"segment?)",
				a);
	return 0;
}

static uint32_t sum16(const void *p, size_t n, uint32_t s)
{
	const uint8_t *b = p;

	for (; n > 1; n -= 2, b += 2)
		s += (uint32_t)b[0] << 8 | b[1];
	if (n)
		s += (uint32_t)b[0] << 8;
	return s;
}

static uint16_t fold(uint32_t s)
{
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return htons((uint16_t)~s);
}

bool pkthold_fix_checksums(uint8_t *p, size_t n)
{
	struct iphdr *ip = (struct iphdr *)p;
	size_t ihl, tot;
	uint8_t pseudo[12];

	if (n < sizeof(*ip) || ip->version != 4 || ip->protocol != IPPROTO_TCP)
		return false;
	ihl = ip->ihl * 4u;
	if (ihl < sizeof(*ip) || ihl + 20 > n)
		return false;
	tot = ntohs(ip->tot_len);
	if (tot != n || (ntohs(ip->frag_off) & 0x3fff)) /* truncated, or a fragment */
		return false;
	ip->check = 0;
	ip->check = fold(sum16(p, ihl, 0));
	memcpy(pseudo, &ip->saddr, 4);
	memcpy(pseudo + 4, &ip->daddr, 4);
	pseudo[8] = 0;
	pseudo[9] = IPPROTO_TCP;
	pseudo[10] = (uint8_t)((n - ihl) >> 8);
	pseudo[11] = (uint8_t)(n - ihl);
	p[ihl + 16] = p[ihl + 17] = 0;
	uint16_t c = fold(sum16(p + ihl, n - ihl, sum16(pseudo, sizeof(pseudo), 0)));
	memcpy(p + ihl + 16, &c, 2);
	return true;
}

/* The same segment held again (same IP id, ports, sequence and
 * acknowledgement numbers, flags and length; a retransmission by its sender
 * has another IP id): post-copy moves under a connection storm held each
 * many times over. seen: SEEN_N slots, 0 = free. */
static bool seen_before(uint64_t *seen, const uint8_t *p)
{
	const struct iphdr *ip = (const struct iphdr *)p;
	const uint8_t *t = p + ip->ihl * 4u;
	uint64_t k = 1469598103934665603ull; /* FNV-1a */
	uint8_t key[30];

	memcpy(key, &ip->saddr, 8);	   /* both addresses */
	memcpy(key + 8, &ip->id, 2);	   /* IP id */
	memcpy(key + 10, t, 12);	   /* ports, sequence, acknowledgement */
	memcpy(key + 22, t + 13, 1);	   /* flags */
	memcpy(key + 23, &ip->tot_len, 2); /* length */
	memset(key + 25, 0, sizeof(key) - 25);
	for (size_t i = 0; i < sizeof(key); i++)
		k = (k ^ key[i]) * 1099511628211ull;
	k |= 1;
	for (uint32_t i = (uint32_t)k & (SEEN_N - 1), probes = 0; probes < 64;
	     i = (i + 1) & (SEEN_N - 1), probes++) {
		if (seen[i] == k)
			return true;
		if (!seen[i]) {
			seen[i] = k;
			return false;
		}
	}
	return false; /* crowded: replay it, TCP copes with duplicates */
}

int pkthold_replay(struct pkthold *h, const struct in_addr *via, struct pkthold_stats *st,
		   ferr_t *err)
{
	struct sockaddr_ll to = {
	    .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_IP), .sll_halen = ETH_ALEN};
	struct tpacket_stats ks;
	socklen_t kl = sizeof(ks);
	uint8_t *p;

	memset(st, 0, sizeof(*st));
	if (neigh_of(via, to.sll_addr, &to.sll_ifindex, err) < 0)
		return -1;
	uint64_t *seen = calloc(SEEN_N, sizeof(*seen));
	if (!seen || !(p = malloc(P_MAX))) {
		free(seen);
		return ferr_set(err, FX_FAIL, "out of memory");
	}
	for (;;) {
		struct sockaddr_ll from;
		socklen_t fl = sizeof(from);
		ssize_t n = recvfrom(h->sk, p, P_MAX, MSG_TRUNC, (struct sockaddr *)&from, &fl);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break; /* EAGAIN: all read */
		/* frames to this host only: not what this host sends (its own
		 * replays included), nor what other hosts exchange */
		if (from.sll_pkttype != PACKET_HOST)
			continue;
		st->held++;
		if ((size_t)n > P_MAX || !pkthold_fix_checksums(p, (size_t)n))
			continue;
		if (seen_before(seen, p)) {
			st->again++;
			continue;
		}
		if (sendto(h->sk, p, (size_t)n, 0, (struct sockaddr *)&to, sizeof(to)) == n)
			st->sent++;
	}
	if (getsockopt(h->sk, SOL_PACKET, PACKET_STATISTICS, &ks, &kl) == 0)
		st->dropped = ks.tp_drops;
	free(p);
	free(seen);
	return 0;
}
