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
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <netlink/netlink.h>
#include <netlink/route/neighbour.h>

#include "lib/log.h"
#include "tenant/net.h"

#define HOLD_BUF (32 << 20) /* the kernel's buffer for held segments */
#define P_MAX	 65536	    /* an IPv4 packet */

struct pkthold {
	int sk;
	struct in_addr addr;
	char cidr[64]; /* the address's blackhole route, when route is set */
	bool route;
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
	/* the replay sends thousands at once after a long freeze */
	if (setsockopt(h->sk, SOL_SOCKET, SO_SNDBUFFORCE, &buf, sizeof(buf)) < 0)
		setsockopt(h->sk, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
	if (attach_filter(h->sk, h->addr, err) < 0 ||
	    bind(h->sk, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
		if (!err || !err->code)
			ferr_sys(err, FX_FAIL, "binding the packet socket for held segments");
		pkthold_free(h);
		return NULL;
	}
	/* best effort: without it the old route-less forwarding stays */
	snprintf(h->cidr, sizeof(h->cidr), "%s", addr_cidr);
	h->route = net_hold_route(h->cidr, true, NULL) == 0;
	return h;
}

void pkthold_free(struct pkthold *h)
{
	if (!h)
		return;
	if (h->route)
		net_hold_route(h->cidr, false, NULL);
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

/* A segment's identity across its copies: addresses, ports, sequence and
 * acknowledgement numbers, flags and payload length; not the IP id, TTL,
 * window or options, which differ between a sender's retransmissions (and
 * the TTL between the passes of a frame that went round between hosts).
 * Never 0. The packet is a whole IPv4/TCP one (pkthold_fix_checksums). */
static uint64_t seg_key(const uint8_t *p)
{
	const struct iphdr *ip = (const struct iphdr *)p;
	const uint8_t *t = p + ip->ihl * 4u;
	uint16_t payload = (uint16_t)(ntohs(ip->tot_len) - ip->ihl * 4u - (t[12] >> 4) * 4u);
	uint64_t k = 1469598103934665603ull; /* FNV-1a */
	uint8_t key[23];

	memcpy(key, &ip->saddr, 8);    /* both addresses */
	memcpy(key + 8, t, 12);	       /* ports, sequence, acknowledgement */
	key[20] = t[13];	       /* flags */
	memcpy(key + 21, &payload, 2); /* payload length */
	for (size_t i = 0; i < sizeof(key); i++)
		k = (k ^ key[i]) * 1099511628211ull;
	return k | 1;
}

size_t pkthold_pick_latest(uint8_t *const *pkts, size_t n, bool *keep)
{
	size_t cap = 16, kept = 0;

	while (cap < 2 * n)
		cap *= 2;
	uint64_t *keys = calloc(cap, sizeof(*keys));
	size_t *at = malloc(cap * sizeof(*at));
	if (!keys || !at) { /* no room to tell copies apart: replay them all */
		free(keys);
		free(at);
		for (size_t i = 0; i < n; i++)
			keep[i] = true;
		return n;
	}
	for (size_t i = 0; i < n; i++) {
		uint64_t k = seg_key(pkts[i]);
		size_t j = (size_t)k & (cap - 1);
		while (keys[j] && keys[j] != k)
			j = (j + 1) & (cap - 1);
		if (keys[j])
			keep[at[j]] = false; /* an earlier copy: this one replaces it */
		else
			kept++;
		keys[j] = k;
		at[j] = i;
		keep[i] = true;
	}
	free(keys);
	free(at);
	return kept;
}

/* Everything the hold has, read into one buffer: its whole IPv4/TCP
 * packets (checksums recomputed) in the order they came; pkts, once read. */
struct batch {
	uint8_t *buf;
	size_t used, cap;
	size_t *off;
	size_t n, ncap;
	uint8_t **pkts;
};

static int batch_add(struct batch *b, const uint8_t *p, size_t n)
{
	b->used = (b->used + 7) & ~(size_t)7; /* each packet aligned for its headers */
	if (b->used + n > b->cap) {
		size_t c = b->cap ? b->cap * 2 : (1 << 20);
		while (c < b->used + n)
			c *= 2;
		uint8_t *nb = realloc(b->buf, c);
		if (!nb)
			return -1;
		b->buf = nb;
		b->cap = c;
	}
	if (b->n == b->ncap) {
		size_t c = b->ncap ? b->ncap * 2 : 4096;
		size_t *no = realloc(b->off, c * sizeof(*no));
		if (!no)
			return -1;
		b->off = no;
		b->ncap = c;
	}
	memcpy(b->buf + b->used, p, n);
	b->off[b->n++] = b->used;
	b->used += n;
	return 0;
}

static size_t pkt_len(const uint8_t *p)
{
	return ntohs(((const struct iphdr *)p)->tot_len);
}

/* Read the hold until it is empty: frames to this host only (not what this
 * host sends, its own replays included, nor what other hosts exchange). */
static int drain(struct pkthold *h, struct batch *b, struct pkthold_stats *st, ferr_t *err)
{
	uint8_t *p = malloc(P_MAX);

	if (!p)
		return ferr_set(err, FX_FAIL, "out of memory");
	for (;;) {
		struct sockaddr_ll from;
		socklen_t fl = sizeof(from);
		ssize_t n = recvfrom(h->sk, p, P_MAX, MSG_TRUNC, (struct sockaddr *)&from, &fl);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break; /* EAGAIN: all read */
		if (from.sll_pkttype != PACKET_HOST)
			continue;
		st->held++;
		if ((size_t)n > P_MAX || !pkthold_fix_checksums(p, (size_t)n))
			continue;
		if (batch_add(b, p, (size_t)n) < 0) {
			free(p);
			return ferr_set(err, FX_FAIL, "out of memory for held segments");
		}
	}
	free(p);
	if (b->n && !(b->pkts = malloc(b->n * sizeof(*b->pkts))))
		return ferr_set(err, FX_FAIL, "out of memory for held segments");
	for (size_t i = 0; i < b->n; i++)
		b->pkts[i] = b->buf + b->off[i];
	return 0;
}

/* One held packet to the destination. The socket does not block (the hold
 * is drained to EAGAIN): a full send buffer (EAGAIN) or device queue
 * (ENOBUFS) is waited out in 1 ms steps, out of *budget_ms for the whole
 * replay; a packet the interface cannot take (larger than its MTU...) is
 * left to its sender. */
#define SEND_WAIT_MS 1000
static int send_one(int sk, const uint8_t *p, const struct sockaddr_ll *to, int *budget_ms)
{
	size_t n = pkt_len(p);

	for (;;) {
		if (sendto(sk, p, n, 0, (const struct sockaddr *)to, sizeof(*to)) == (ssize_t)n)
			return 0;
		if (errno == EINTR)
			continue;
		if ((errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOBUFS) ||
		    *budget_ms <= 0)
			return -1;
		struct pollfd pf = {.fd = sk, .events = POLLOUT};
		if (errno == ENOBUFS || poll(&pf, 1, 1) <= 0) { /* the device queue drains */
			struct timespec ts = {0, 1000000};
			nanosleep(&ts, NULL);
		}
		(*budget_ms)--;
	}
}

int pkthold_replay(struct pkthold *h, const struct in_addr *via, struct pkthold_stats *st,
		   ferr_t *err)
{
	struct sockaddr_ll to = {
	    .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_IP), .sll_halen = ETH_ALEN};
	struct tpacket_stats ks;
	socklen_t kl = sizeof(ks);
	struct batch b = {0};
	bool *keep = NULL;
	int r = -1;

	memset(st, 0, sizeof(*st));
	if (neigh_of(via, to.sll_addr, &to.sll_ifindex, err) < 0 || drain(h, &b, st, err) < 0)
		goto out;
	if (b.n && !(keep = malloc(b.n * sizeof(*keep)))) {
		ferr_set(err, FX_FAIL, "out of memory for held segments");
		goto out;
	}
	st->again = b.n - pkthold_pick_latest(b.pkts, b.n, keep);
	int budget = SEND_WAIT_MS;
	for (size_t i = 0; i < b.n; i++)
		if (keep[i] && send_one(h->sk, b.pkts[i], &to, &budget) == 0)
			st->sent++;
	st->unsent = b.n - st->again - st->sent;
	if (getsockopt(h->sk, SOL_PACKET, PACKET_STATISTICS, &ks, &kl) == 0)
		st->dropped = ks.tp_drops;
	r = 0;
out:
	free(keep);
	free(b.pkts);
	free(b.off);
	free(b.buf);
	return r;
}
