/* Gratuitous ARP through an AF_PACKET socket (garp.h). */
#define LOG_PREFIX "garp"
#include "tenant/garp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <ifaddrs.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/log.h"

struct arp_pkt {
	struct arphdr h;
	uint8_t sha[ETH_ALEN];
	uint8_t spa[4];
	uint8_t tha[ETH_ALEN];
	uint8_t tpa[4];
} __attribute__((packed));

static int send_on(int sk, const char *ifname, struct in_addr ip, ferr_t *err)
{
	struct ifreq ifr = {0};
	struct sockaddr_ll sll = {0};
	struct arp_pkt p;

	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	if (ioctl(sk, SIOCGIFHWADDR, &ifr) < 0)
		return ferr_sys(err, FX_FAIL, "MAC address of %s", ifname);
	memset(&p, 0, sizeof(p));
	p.h.ar_hrd = htons(ARPHRD_ETHER);
	p.h.ar_pro = htons(ETH_P_IP);
	p.h.ar_hln = ETH_ALEN;
	p.h.ar_pln = 4;
	p.h.ar_op = htons(ARPOP_REQUEST); /* "who has IP? tell IP": updates caches */
	memcpy(p.sha, ifr.ifr_hwaddr.sa_data, ETH_ALEN);
	memcpy(p.spa, &ip, 4);
	memcpy(p.tpa, &ip, 4);
	sll.sll_family = AF_PACKET;
	sll.sll_protocol = htons(ETH_P_ARP);
	sll.sll_ifindex = (int)if_nametoindex(ifname);
	sll.sll_halen = ETH_ALEN;
	memset(sll.sll_addr, 0xff, ETH_ALEN);
	if (!sll.sll_ifindex)
		return ferr_sys(err, FX_FAIL, "interface %s", ifname);
	for (int i = 0; i < 2; i++)
		if (sendto(sk, &p, sizeof(p), 0, (struct sockaddr *)&sll, sizeof(sll)) < 0)
			return ferr_sys(err, FX_FAIL, "gratuitous ARP on %s", ifname);
	return 0;
}

int garp_announce(const char *addr_cidr, const char *exclude_if, ferr_t *err)
{
	char addr[64];
	struct in_addr ip;
	struct ifaddrs *ifa = NULL;
	int sk, n = 0, ret = 0;

	snprintf(addr, sizeof(addr), "%s", addr_cidr);
	addr[strcspn(addr, "/")] = '\0';
	if (inet_pton(AF_INET, addr, &ip) != 1)
		return ferr_set(err, FX_USAGE, "not an IPv4 address: %s", addr_cidr);
	if (getifaddrs(&ifa) < 0)
		return ferr_sys(err, FX_FAIL, "listing interfaces");
	sk = socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, htons(ETH_P_ARP));
	if (sk < 0) {
		freeifaddrs(ifa);
		return ferr_sys(err, FX_FAIL, "packet socket for gratuitous ARP");
	}
	for (struct ifaddrs *i = ifa; i; i = i->ifa_next) {
		if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET || !i->ifa_netmask ||
		    (i->ifa_flags & IFF_LOOPBACK) || !(i->ifa_flags & IFF_UP))
			continue;
		if (exclude_if && !strcmp(i->ifa_name, exclude_if))
			continue;
		uint32_t a = ((struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr;
		uint32_t m = ((struct sockaddr_in *)i->ifa_netmask)->sin_addr.s_addr;
		if ((a & m) != (ip.s_addr & m) || m == 0xffffffffU)
			continue;
		if (send_on(sk, i->ifa_name, ip, err) < 0) {
			ret = -1;
			break;
		}
		pr_debug("announced %s on %s", addr, i->ifa_name);
		n++;
	}
	close(sk);
	freeifaddrs(ifa);
	return ret < 0 ? -1 : n;
}

int l2_get_mac(const char *ifname, uint8_t mac[6], ferr_t *err)
{
	struct ifreq ifr = {0};
	int sk = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (sk < 0)
		return ferr_sys(err, FX_FAIL, "socket");
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	if (ioctl(sk, SIOCGIFHWADDR, &ifr) < 0) {
		close(sk);
		return ferr_sys(err, FX_FAIL, "MAC address of %s", ifname);
	}
	close(sk);
	memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
	return 0;
}

static int set_flags(int sk, const char *ifname, bool up)
{
	struct ifreq ifr = {0};

	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	if (ioctl(sk, SIOCGIFFLAGS, &ifr) < 0)
		return -1;
	if (up)
		ifr.ifr_flags |= IFF_UP;
	else
		ifr.ifr_flags &= ~IFF_UP;
	return ioctl(sk, SIOCSIFFLAGS, &ifr);
}

int l2_set_mac(const char *ifname, const uint8_t mac[6], ferr_t *err)
{
	struct ifreq ifr = {0};
	int sk = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), r;

	if (sk < 0)
		return ferr_sys(err, FX_FAIL, "socket");
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	ifr.ifr_hwaddr.sa_family = ARPHRD_ETHER;
	memcpy(ifr.ifr_hwaddr.sa_data, mac, 6);
	r = ioctl(sk, SIOCSIFHWADDR, &ifr);
	if (r < 0 && errno == EBUSY && set_flags(sk, ifname, false) == 0) {
		r = ioctl(sk, SIOCSIFHWADDR, &ifr);
		set_flags(sk, ifname, true);
	}
	if (r < 0)
		ferr_sys(err, FX_FAIL, "setting the MAC address of %s", ifname);
	close(sk);
	return r < 0 ? -1 : 0;
}
