/* The QEMU checkpoint backend (ckpt.h) and what the VM tenant kind shares
 * with it: starting a VM's QEMU and talking to it.
 *
 * A VM's configuration is its record's argv: "qemu-system-x86_64" and the
 * options that make the machine (machine type, CPU model, memory, CPUs,
 * devices, kernel or disk), the same on every host and in its manifest.
 * What belongs to one host is added at each start: the accelerator
 * (vmprobe.h), the QMP socket DIR/qmp.sock and the serial console appended
 * to DIR/console.log (DIR: the tenant's state directory), the tap device of
 * its network, QEMU's own messages in DIR/qemu.log. */
#ifndef FERRY_CKPT_QEMU_H
#define FERRY_CKPT_QEMU_H

#include <stdbool.h>
#include <sys/types.h>

#include "lib/err.h"
#include "tenant/ckpt.h"
#include "tenant/qmp.h"
#include "tenant/registry.h"

#define QEMU_STATE_FILE "vm.state"  /* the migration stream of a dump */
#define QEMU_INFO_FILE	"vm.json"   /* what the load checks: QEMU version, machine... */
#define QEMU_MIG_FD	"ferry-mig" /* the fd name of a migration stream (getfd) */

/* An incoming QEMU's guard: a process that kills it if the loading ferry
 * dies before it released it (the VM must run on one host only). */
struct qemu_guard {
	pid_t mid;
	int fd;
};

/* Start QEMU for a VM. *pid: QEMU, not a child of ours (it outlives
 * ferry); *q (may be NULL): its QMP session. With g: an incoming QEMU
 * (waiting for a migration stream, paused after it), guarded until
 * qemu_guard_release. */
int qemu_launch(const char *dir, const char *name, int argc, char *const *argv,
		const struct tenant_net *net, struct qemu_guard *g, pid_t *pid, struct qmp **q,
		ferr_t *err);
/* A VM's configuration comes from a record or a peer's manifest: only what
 * `ferry run --vm` writes is accepted (argv[0] qemu-system-x86_64; -machine
 * pc-*, -cpu, -m, -smp with plain values; -nodefaults, -no-user-config;
 * -serial chardev:ser0; -device virtio-net-pci,netdev=n0,mac=MAC; -drive
 * file=ABS,format=raw|qcow2,if=ide,index=0,media=disk; -kernel, -initrd
 * ABS; -append TEXT). FX_INTEGRITY naming what is not. */
int qemu_config_check(int argc, char *const *argv, ferr_t *err);
/* keep: the VM is ours for good; otherwise the guard kills QEMU. */
void qemu_guard_release(struct qemu_guard *g, bool keep);
/* Connect to the VM's QMP socket in dir. */
int qemu_qmp(const char *dir, struct qmp **q, ferr_t *err);
/* End QEMU: `quit` (when q), then SIGKILL if it is still there after ms. */
void qemu_end(struct qmp *q, pid_t pid, int ms);
/* QEMU's run state ("running", "paused", ...) into out. */
int qemu_status(struct qmp *q, char *out, size_t len, ferr_t *err);
/* The concrete machine type the alias "pc" stands for (pc-i440fx-X.Y). */
int qemu_machine(const char *qemu, char *out, size_t len, ferr_t *err);

/* The incoming side (ckpt_qemu_in.c), the backend's ops: a QEMU started
 * ahead at a migration's BEGIN (with -incoming defer, guarded), the sink
 * that feeds it the stream (or writes DIR/vm.state without one). */
void *qemu_prepare(const struct ckpt_env *env, const struct ckpt_target *t, bool lazy);
void qemu_prepared_free(void *p);
/* A load (lazy: post-copy) takes the prepared QEMU over (its pid, QMP
 * session, guard); *fed: the stream was handed to it. Fails with why it did
 * not start. */
int qemu_prepared_take(void *p, bool lazy, pid_t *pid, struct qmp **q, struct qemu_guard *g,
		       bool *fed, ferr_t *err);
/* userfaultfd works on this host (QEMU's post-copy destination needs it). */
bool qemu_uffd_ok(void);
int qemu_sink_open(const struct ckpt_env *env, const char *dir, const char *prev, void *prepared,
		   struct ckpt_sink **out, int *fd, ferr_t *err);
int qemu_sink_close(struct ckpt_sink *s, bool failed, ferr_t *err);

#endif
