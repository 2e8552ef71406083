/* Network plumbing (net.c) against the real kernel, inside a private network
 * namespace of this test process (nothing touches the host's network):
 * host-side plumbing is idempotent, address conflicts are refused, unplumb
 * removes everything and tolerates what is already gone, net_setup_tenant
 * configures a tenant namespace. Skipped (77) without CAP_NET_ADMIN. */
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tenant/net.h"
#include "unit.h"

/* Output of a shell command (first 4 KiB). */
static const char *sh(const char *cmd)
{
	static char out[4096];
	FILE *p = popen(cmd, "r");
	size_t n = 0;

	out[0] = '\0';
	if (!p)
		return out;
	n = fread(out, 1, sizeof(out) - 1, p);
	out[n] = '\0';
	pclose(p);
	return out;
}

static void test_plumb(void)
{
	ferr_t e = {0};

	CHECK(system("ip link add fy-a type veth peer name pa") == 0);
	CHECK(net_host_plumb("fy-a", "10.201.9.2/24", &e) == 0);
	CHECK(net_host_plumb("fy-a", "10.201.9.2/24", &e) == 0); /* idempotent */
	CHECK(strstr(sh("ip route show 10.201.9.2/32"), "dev fy-a scope link") != NULL);
	CHECK(strstr(sh("ip -br link show fy-a"), "UP") != NULL ||
	      strstr(sh("ip -br link show fy-a"), "LOWERLAYERDOWN") != NULL);
	CHECK(!strcmp(sh("cat /proc/sys/net/ipv4/conf/fy-a/proxy_arp"), "1\n"));

	/* the same address on another interface is a conflict */
	CHECK(system("ip link add fy-b type veth peer name pb") == 0);
	e = (ferr_t){0};
	CHECK(net_host_plumb("fy-b", "10.201.9.2/24", &e) < 0 && e.code == FX_CONFLICT);
	CHECK(strstr(e.msg, "already routed to fy-a") != NULL);
	e = (ferr_t){0};
	CHECK(net_check_config("fy-c", "10.201.9.2/24", &e) < 0 && e.code == FX_CONFLICT);
	e = (ferr_t){0};
	CHECK(net_check_config("fy-b", "10.201.9.3/24", &e) < 0 && e.code == FX_CONFLICT);
	CHECK(net_check_config("fy-c", "10.201.9.3/24", &e) == 0);

	CHECK(net_host_unplumb("fy-a", "10.201.9.2/24", &e) == 0);
	CHECK(!strcmp(sh("ip route show 10.201.9.2/32"), ""));
	CHECK(strstr(sh("ip link show fy-a 2>&1"), "does not exist") != NULL);
	CHECK(net_host_unplumb("fy-a", "10.201.9.2/24", &e) == 0); /* missing is fine */
	CHECK(net_host_unplumb("fy-b", NULL, &e) == 0);
}

static void test_bad_addr(void)
{
	static const char *bad[] = {"10.201.0.2",  "10.201.0.2/33", "10.201.0.2/0",
				    "nonsense/24", "fd00::2/64",    ""};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ferr_t e = {0};
		CHECK(net_check_config("fy-x", bad[i], &e) < 0 && e.code == FX_USAGE);
	}
}

static void test_setup_tenant(void)
{
	int go[2];
	ferr_t e = {0};
	char cmd[256];

	CHECK(pipe(go) == 0);
	pid_t pid = fork();
	if (pid == 0) { /* the "tenant": its own network namespace, waits */
		char c;
		close(go[1]);
		if (unshare(CLONE_NEWNET) < 0)
			_exit(1);
		if (read(go[0], &c, 1) < 0) /* wait for the parent's checks */
			_exit(1);
		_exit(0);
	}
	close(go[0]);
	/* wait until the child has its own namespace */
	char self[64], other[64], p[64];
	ssize_t n1 = readlink("/proc/self/ns/net", self, sizeof(self) - 1);
	for (int i = 0; i < 500; i++) {
		snprintf(p, sizeof(p), "/proc/%d/ns/net", (int)pid);
		ssize_t n2 = readlink(p, other, sizeof(other) - 1);
		if (n1 > 0 && n2 > 0 && (n1 != n2 || memcmp(self, other, (size_t)n1)))
			break;
		usleep(2000);
	}
	CHECK(net_setup_tenant(pid, "fy-t", "eth0", "10.201.8.2/24", &e) == 0);
	if (e.code)
		fprintf(stderr, "  %s\n", e.msg);
	snprintf(cmd, sizeof(cmd), "nsenter -t %d -n ip -br addr show eth0", (int)pid);
	CHECK(strstr(sh(cmd), "10.201.8.2/24") != NULL);
	snprintf(cmd, sizeof(cmd), "nsenter -t %d -n ip route show default", (int)pid);
	CHECK(strstr(sh(cmd), "default dev eth0 scope link") != NULL);
	CHECK(strstr(sh("ip route show 10.201.8.2/32"), "dev fy-t") != NULL);
	/* this namespace stands for the host: give it an address to ping from */
	CHECK(system("ip addr add 10.201.8.1/32 dev lo") == 0);
	CHECK(strstr(sh("ping -c1 -W2 10.201.8.2 2>&1 || busybox ping -c1 -W2 10.201.8.2 2>&1"),
		     " 0% packet loss") != NULL);
	/* the host side name is taken now */
	e = (ferr_t){0};
	CHECK(net_setup_tenant(pid, "fy-t", "eth1", "10.201.8.3/24", &e) < 0 &&
	      e.code == FX_CONFLICT);
	close(go[1]);
	waitpid(pid, NULL, 0);
	CHECK(net_host_unplumb("fy-t", "10.201.8.2/24", &e) == 0);
	CHECK(strstr(sh("ip link show fy-t 2>&1"), "does not exist") != NULL);
}

static void test_ifname(void)
{
	char a[16];

	net_host_ifname("x", a);
	CHECK(!strcmp(a, "fy-x"));
}

/* net_check_movable: only addresses inside a host interface's subnet. */
static void test_movable(void)
{
	ferr_t e = {0};

	sh("ip link add fy-m type veth peer name fy-mp && ip addr add 10.201.7.1/24 dev fy-m && "
	   "ip link set fy-m up");
	CHECK(net_check_movable("10.201.7.9/24", &e) == 0);
	CHECK(net_check_movable("10.201.7.9/32", &e) == 0);
	CHECK(net_check_movable("10.201.6.9/24", &e) < 0 && e.code == FX_HOST &&
	      strstr(e.msg, "no subnet") && strstr(e.msg, "fy-m 10.201.7.1/24"));
	ferr_clear(&e);
	CHECK(net_check_movable("10.201.7.1/24", &e) < 0 && e.code == FX_CONFLICT);
	ferr_clear(&e);
	CHECK(net_check_movable("127.0.0.2/8", &e) < 0 && e.code == FX_HOST);
	ferr_clear(&e);
	CHECK(net_check_movable("nonsense", &e) < 0 && e.code == FX_USAGE);
	ferr_clear(&e);
	sh("ip link del fy-m");
}

int main(void)
{
	if (unshare(CLONE_NEWNET) < 0) {
		printf("SKIP: cannot create a network namespace (needs root)\n");
		return 77;
	}
	if (system("ip link set lo up") != 0) {
		printf("SKIP: no 'ip' command\n");
		return 77;
	}
	RUN(test_plumb);
	RUN(test_bad_addr);
	RUN(test_setup_tenant);
	RUN(test_ifname);
	RUN(test_movable);
	UNIT_DONE();
}
