/* The QMP client (tenant/qmp.h) against a scripted peer on a socket pair:
 * reply parsing, the greeting and negotiation, events skipped (and kept)
 * while a reply is awaited, errors, a file descriptor passed with a
 * command; the accelerator probe's version comparison (tenant/vmprobe.h);
 * the check of a VM's configuration from a peer (tenant/ckpt_qemu.h).
 * No QEMU. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tenant/ckpt_qemu.h"
#include "tenant/qmp.h"
#include "tenant/vmprobe.h"
#include "unit.h"

static void test_parse(void)
{
	json_t *ret = NULL, *msg = NULL;
	const char *ev = NULL;
	ferr_t err = {0};
	const char *r1 = "{\"return\": {\"status\": \"running\"}}";
	const char *e1 = "{\"event\": \"STOP\", \"timestamp\": {}}";
	const char *x1 = "{\"error\": {\"class\": \"GenericError\", \"desc\": \"no way\"}}";

	CHECK(qmp_parse_line(r1, strlen(r1), &ret, &ev, NULL, &err) == 0);
	CHECK(!strcmp(json_string_value(json_object_get(ret, "status")), "running"));
	json_decref(ret);
	CHECK(qmp_parse_line(e1, strlen(e1), &ret, &ev, &msg, &err) == 1);
	CHECK(ev && !strcmp(ev, "STOP"));
	json_decref(msg);
	CHECK(qmp_parse_line(x1, strlen(x1), &ret, &ev, NULL, &err) < 0);
	CHECK(strstr(err.msg, "no way") && strstr(err.msg, "GenericError"));
	CHECK(qmp_parse_line("{bad", 4, &ret, &ev, NULL, &err) < 0);
	CHECK(qmp_parse_line("[1]", 3, &ret, &ev, NULL, &err) < 0);
}

static void say(int fd, const char *s)
{
	CHECK(write(fd, s, strlen(s)) == (ssize_t)strlen(s));
}

/* What the client sent, and the descriptor that came with it. */
static void heard(int fd, char *buf, size_t len, int *got_fd)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = {.iov_base = buf, .iov_len = len - 1};
	struct msghdr mh = {
	    .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
	ssize_t n = recvmsg(fd, &mh, 0);

	buf[n > 0 ? n : 0] = 0;
	*got_fd = -1;
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	if (c && c->cmsg_type == SCM_RIGHTS)
		memcpy(got_fd, CMSG_DATA(c), sizeof(int));
}

static void test_session(void)
{
	int sv[2], got = -1;
	struct qmp *q = NULL;
	json_t *ret = NULL;
	ferr_t err = {0};
	char buf[4096];

	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	/* the peer's answers, written ahead: greeting, capabilities, then an
	 * event before the reply to query-status, then an error */
	say(sv[1], "{\"QMP\": {\"version\": {}, \"capabilities\": []}}\r\n");
	say(sv[1], "{\"return\": {}}\r\n");
	CHECK(qmp_attach(sv[0], 1000, &q, &err) == 0);
	heard(sv[1], buf, sizeof(buf), &got);
	CHECK(strstr(buf, "\"qmp_capabilities\"") != NULL);
	say(sv[1], "{\"event\": \"RESUME\"}\r\n{\"return\": {\"status\": \"paused\"}}\r\n");
	CHECK(qmp_exec(q, "query-status", NULL, -1, 1000, &ret, &err) == 0);
	CHECK(!strcmp(json_string_value(json_object_get(ret, "status")), "paused"));
	json_decref(ret);
	CHECK(qmp_event_seen(q, "RESUME") && !qmp_event_seen(q, "STOP"));
	heard(sv[1], buf, sizeof(buf), &got);
	CHECK(strstr(buf, "\"query-status\"") && got < 0);

	int fd = open("/dev/null", O_RDONLY);
	say(sv[1], "{\"error\": {\"class\": \"GenericError\", \"desc\": \"bad fd\"}}\r\n");
	CHECK(qmp_exec(q, "getfd", json_pack("{s:s}", "fdname", "x"), fd, 1000, NULL, &err) < 0);
	CHECK(strstr(err.msg, "getfd") && strstr(err.msg, "bad fd"));
	heard(sv[1], buf, sizeof(buf), &got);
	CHECK(strstr(buf, "\"fdname\":\"x\"") && got >= 0);
	if (got >= 0)
		close(got);
	close(fd);

	/* no answer in time; its late reply is not taken for the next one's */
	ferr_clear(&err);
	CHECK(qmp_exec(q, "stop", NULL, -1, 50, NULL, &err) < 0 && strstr(err.msg, "in time"));
	heard(sv[1], buf, sizeof(buf), &got);
	say(sv[1], "{\"return\": {\"late\": 1}, \"id\": 4}\r\n");
	say(sv[1], "{\"return\": {\"status\": \"running\"}, \"id\": 5}\r\n");
	CHECK(qmp_exec(q, "query-status", NULL, -1, 1000, &ret, &err) == 0);
	CHECK(ret && !json_object_get(ret, "late") &&
	      !strcmp(json_string_value(json_object_get(ret, "status")) ?: "", "running"));
	json_decref(ret);
	/* then the peer goes away */
	close(sv[1]);
	CHECK(qmp_exec(q, "stop", NULL, -1, 1000, NULL, &err) < 0);
	qmp_close(q);
}

static void test_versions(void)
{
	CHECK(vm_version_cmp("7.2.22", "7.2.22") == 0);
	CHECK(vm_version_cmp("7.2", "7.2.1") < 0);
	CHECK(vm_version_cmp("8.0.0", "7.2.22") > 0);
	CHECK(vm_version_cmp("6.0.0", "7.2.22") < 0);
	CHECK(vm_version_cmp("7.10", "7.2") > 0);
	CHECK(!strcmp(vm_accel_arg(VM_ACCEL_KVM), "kvm"));
	CHECK(!strncmp(vm_accel_arg(VM_ACCEL_TCG), "tcg", 3));
}

#define CFG(...)                                                                                   \
	qemu_config_check((int)(sizeof((char *[]){__VA_ARGS__}) / sizeof(char *)),                 \
			  (char *[]){__VA_ARGS__}, &err)

static void test_config(void)
{
	ferr_t err = {0};

	CHECK(CFG("qemu-system-x86_64", "-machine", "pc-i440fx-7.2", "-cpu", "qemu64", "-m", "64M",
		  "-smp", "2", "-nodefaults", "-no-user-config", "-serial", "chardev:ser0",
		  "-device", "virtio-net-pci,netdev=n0,mac=52:54:0a:1b:2c:3d", "-drive",
		  "file=/srv/vm.img,format=raw,if=ide,index=0,media=disk") == 0);
	CHECK(CFG("qemu-system-x86_64", "-m", "1G", "-kernel", "/boot/vmlinuz", "-initrd",
		  "/boot/initrd.img", "-append", "console=ttyS0 ip=10.0.0.2::::v:eth0:off") == 0);
	/* what a peer must not make QEMU do */
	CHECK(CFG("/bin/sh", "-c", "true") < 0 && err.code == FX_INTEGRITY);
	CHECK(CFG("qemu-system-x86_64", "-plugin", "file=/tmp/x.so") < 0);
	CHECK(CFG("qemu-system-x86_64", "-chardev", "socket,id=x,path=/tmp/s") < 0);
	CHECK(CFG("qemu-system-x86_64", "-machine", "pc,accel=kvm") < 0);
	CHECK(CFG("qemu-system-x86_64", "-m", "64M,slots=4") < 0);
	CHECK(CFG("qemu-system-x86_64", "-device",
		  "virtio-net-pci,netdev=n0,mac=52:54:00:00:00:00,romfile=/x") < 0);
	CHECK(CFG("qemu-system-x86_64", "-drive",
		  "file=/srv/a.img,format=raw,if=ide,index=0,media=disk,snapshot=on") < 0);
	CHECK(CFG("qemu-system-x86_64", "-drive",
		  "file=rel.img,format=raw,if=ide,index=0,media=disk") < 0);
	CHECK(CFG("qemu-system-x86_64", "-drive",
		  "file=/a,b.img,format=raw,if=ide,index=0,media=disk") < 0);
	CHECK(CFG("qemu-system-x86_64", "-kernel", "/boot/../etc/shadow") < 0);
	CHECK(CFG("qemu-system-x86_64", "-serial", "file:/etc/passwd") < 0);
	CHECK(CFG("qemu-system-x86_64", "-m") < 0);
}

int main(void)
{
	RUN(test_parse);
	RUN(test_session);
	RUN(test_versions);
	RUN(test_config);
	UNIT_DONE();
}
