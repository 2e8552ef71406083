/* Which accelerator VM tenants get on this host: KVM only where a probe
 * guest really boots under it (an open /dev/kvm proves nothing: a
 * paravirtual KVM may run no stock guest), QEMU's TCG otherwise. The probe
 * guest is a boot sector that writes to QEMU's isa-debug-exit port; it must
 * make QEMU exit with its code within a few seconds. The answer is a fact
 * of the host: cached per boot and QEMU version in
 * /run/ferry/vm-probe. */
#ifndef FERRY_VMPROBE_H
#define FERRY_VMPROBE_H

#include <limits.h>
#include <stddef.h>

#include "lib/err.h"

enum vm_accel { VM_ACCEL_NONE = 0, VM_ACCEL_TCG, VM_ACCEL_KVM };

struct vm_probe {
	enum vm_accel accel; /* NONE: no working QEMU */
	char qemu[PATH_MAX]; /* the QEMU binary */
	char version[32];    /* "7.2.22" */
	char detail[256];    /* why this accelerator */
};

/* QEMU for VM tenants: $FERRY_QEMU, else qemu-system-x86_64 from PATH
 * (FX_HOST when there is none). */
int vm_qemu_locate(char *out, size_t len, ferr_t *err);
/* The QEMU version ("7.2.22") of the binary. */
int vm_qemu_version(const char *qemu, char *out, size_t len, ferr_t *err);
/* Probe (or read the cache). Fails only when QEMU is missing or does not
 * run at all (FX_HOST). */
int vm_probe(struct vm_probe *p, ferr_t *err);
const char *vm_accel_str(enum vm_accel a);
/* QEMU's -accel argument for it ("kvm", "tcg,thread=multi"). */
const char *vm_accel_arg(enum vm_accel a);
/* Compare two dotted versions: < 0, 0, > 0. */
int vm_version_cmp(const char *a, const char *b);

#endif
