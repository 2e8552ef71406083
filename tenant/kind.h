/* Tenant kinds: what one kind of tenant (a container, a process tree; a VM
 * next) is on a host, apart from saving and loading its state, which its
 * checkpoint backend does (ckpt.h). A table of function pointers chosen by
 * the kind (the registry's enum, or the name the registry and the manifest
 * carry), so that `ferry run/kill/rm`, the dump and restore stages and every
 * migration mode run the same code for every kind. No code outside the kinds
 * asks which kind a tenant is.
 *
 * Kinds do not own the registry record: the callers hold its lock and save
 * it (tenant_kill below is the one helper that does both). */
#ifndef FERRY_KIND_H
#define FERRY_KIND_H

#include <stdbool.h>
#include <sys/types.h>

#include "lib/err.h"
#include "proto/manifest.h"
#include "tenant/ckpt.h"
#include "tenant/registry.h"

/* What `start` gets: a new tenant from a command (containers), or a tree
 * that runs already and becomes a tenant (process trees: pid). */
struct tenant_start {
	const char *name;
	const char *rootfs; /* absolute */
	const char *image;  /* the rootfs is this image's overlay (rootfs.h) */
	const char *net;    /* "ADDR/PREFIX" or NULL */
	bool host_only;	    /* net may lie outside every host subnet (cannot move) */
	int argc;
	char **argv;
	pid_t pid;		      /* adopt this running tree */
	const struct tenant_iso *iso; /* containers: user namespace, limits (or NULL) */
	const char *dir;	      /* the tenant's state directory (registry_tenant_dir) */
	const struct vm_spec *vm;     /* VM tenants: what QEMU runs */
};

/* A VM tenant's machine (kind vm, `ferry run --vm`). */
struct vm_spec {
	const char *memory; /* QEMU's -m: "64M", "1G" */
	int cpus;
	const char *kernel; /* boot a kernel (absolute path) ... */
	const char *initrd;
	const char *append;
	const char *disk; /* ... or a disk image (absolute path) */
};

struct tenant_kind_ops {
	enum tenant_kind kind;
	const char *name;	     /* "container", "proctree": registry, ps (manifest and
				      * wire: tenant_kind_to_pb, tenant/registry.h) */
	const struct ckpt_ops *ckpt; /* its checkpoint backend */
	/* Its processes run in a root file system the host must have (or that
	 * travels with it): containers. A destination checks that root. */
	bool has_root;

	/* Fill *rec (zeroed by the caller; name set) for a running tenant. */
	int (*start)(const struct tenant_start *o, struct tenant_rec *rec, ferr_t *err);
	/* End every process of the tenant (sig to what the kind signals), wait
	 * up to timeout_ms until they are gone. */
	int (*kill)(const struct tenant_rec *rec, int sig, int timeout_ms, ferr_t *err);
	/* Host side of its network: plumb (before it runs on this host), cut
	 * (no traffic, kept for plumb), unplumb (gone). Nothing for a tenant in
	 * the host's network. */
	int (*plumb)(const struct tenant_net *net, ferr_t *err);
	int (*cut)(const struct tenant_net *net, ferr_t *err);
	int (*unplumb)(const struct tenant_net *net, ferr_t *err);
	/* Can this host take the tenant (a restore, or a migration's
	 * destination before the source freezes it): e.g. its root file system
	 * is there, its address and host interface are free. host names this
	 * host in messages. */
	int (*precheck)(const struct tenant_rec *rec, const char *host, ferr_t *err);
	/* It runs here no more (ended, killed, dumped, moved away): give back
	 * what the kind holds on this host for it (a container's cgroup).
	 * Never fails; NULL: nothing to give back. */
	void (*released)(const struct tenant_rec *rec);
	/* Right before its backend loads it here (e.g. files the load opens). */
	int (*prepare_load)(const struct tenant_rec *rec, ferr_t *err);
	/* It runs here and has its record (e.g. the console log link). */
	int (*registered)(const char *state_dir, const struct tenant_rec *rec, ferr_t *err);
	/* What its backend must know (ckpt_target). */
	void (*target)(const struct tenant_rec *rec, struct ckpt_target *t);
	/* What goes into its manifest besides what every kind has (name, argv,
	 * init pid): e.g. the root file system and network. */
	void (*describe)(const struct tenant_rec *rec, manifest_t *m);
};

/* The kind of a registry enum, or NULL (a kind this ferry has no driver for). */
const struct tenant_kind_ops *kind_find(enum tenant_kind kind);
/* By the name in the registry / manifest ("container"), or NULL. */
const struct tenant_kind_ops *kind_by_name(const char *name);
/* The registry enum of a manifest's kind (tenant_kind_from_pb);
 * FX_INTEGRITY when unknown. */
int kind_from_manifest(Ferry__TenantKind mk, enum tenant_kind *k, ferr_t *err);
/* kind_find, or FX_HOST saying that this host has no driver for it. */
const struct tenant_kind_ops *kind_get(enum tenant_kind kind, const char *tenant, ferr_t *err);

/* End a registered tenant through its kind: kill (when running or frozen),
 * unplumb, mark it gone and save the record. The caller holds its lock. */
int tenant_kill(const char *state_dir, struct tenant_rec *rec, int sig, int timeout_ms,
		ferr_t *err);
/* describe's network part, shared by the kinds that have one: the tenant's
 * address and interfaces into m->net (nothing when neither is set). */
void kind_describe_net(const struct tenant_net *net, manifest_t *m);
/* ops->released, when the kind has it. */
void tenant_released(const struct tenant_kind_ops *ops, const struct tenant_rec *rec);

extern const struct tenant_kind_ops kind_container;
extern const struct tenant_kind_ops kind_proctree;
extern const struct tenant_kind_ops kind_vm;

#endif
