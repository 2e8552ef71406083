# ferry: build, test, benchmark, demo.
#   make            build build/ferry
#   make ASAN=1     build with AddressSanitizer + UBSan
#   make deps       install what the project needs (idempotent)
#   make check      deps + layer order + build + unit and integration tests
#   make bench      dump/restore benchmark against raw CRIU
#   make bench-migrate  live migration between simulated hosts vs a CRIU+tar baseline
#   make bench-snapshot incremental encrypted snapshots vs criu dump and restic
#   make bench-vm   VM migration vs QEMU's native migration (with and without TLS)
#   make bench-rootfs  a tenant's files carried by migration vs rsync
#   make bench-clients  what clients of a migrated server wait (held segments replayed or not)
#   make soak-storm-workers  busy_storm longer: 50 rounds a mode (ROUNDS) and a
#                   second tenant with setuid workers (wl_workers) moving along
#   make check-kernels  the migration tests on a second kernel (Debian 12's, in QEMU)
#   make demo       the main job, end to end
#   make fuzz       the libFuzzer targets (tests/fuzz), FUZZ_SECONDS each (300);
#                   `make check` runs each briefly (fuzz-brief)
CC      ?= gcc
PKGS    := libnl-route-3.0 libnl-3.0 libprotobuf-c liblz4 openssl libarchive libseccomp jansson
DEPSDIR := $(CURDIR)/.deps

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

ifeq ($(ASAN),1)
VARIANT  := asan
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
else
VARIANT  := release
SANFLAGS :=
endif

# libFuzzer builds (make fuzz): clang, the library instrumented for coverage
ifeq ($(FUZZ),1)
CC       := clang
VARIANT  := fuzz
SANFLAGS := -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer \
            -fno-sanitize-recover=undefined -Wno-unknown-warning-option -Wno-string-plus-int
endif

B        := build
O        := $(B)/obj-$(VARIANT)
GEN      := $(B)/proto

# The version `ferry --version` prints and manifests carry: `git describe` of
# the checkout, or VERSION when built outside git (from a tarball).
VERSION       := 0.1.0
GIT_DESCRIBE  := $(if $(wildcard .git),$(shell git describe --always --dirty 2>/dev/null))
FERRY_VERSION := $(or $(GIT_DESCRIBE),$(VERSION))
VERSION_H     := $(B)/lib/version.h
CFLAGS   := -std=c11 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Werror -Wno-format-truncation -MMD -MP $(SANFLAGS) \
            -I. -I$(B) \
            -DFERRY_DEPS_DIR='"$(DEPSDIR)"' $(PKG_CFLAGS) $(EXTRA_CFLAGS)
LDFLAGS  := $(SANFLAGS) -pthread
LDLIBS   := $(PKG_LIBS) -lm

PROTOS   := $(wildcard proto/*.proto)
CRIU_RPC := /usr/include/criu/rpc.proto
GEN_C    := $(patsubst proto/%.proto,$(GEN)/%.pb-c.c,$(PROTOS)) $(GEN)/rpc.pb-c.c
LAYERS   := lib proto criu tenant snapshot transport migrate agent cmd
LIB_SRC  := $(wildcard $(patsubst %,%/*.c,$(filter-out cmd,$(LAYERS)))) \
            $(filter-out cmd/main.c,$(wildcard cmd/*.c))
LIB_OBJ  := $(patsubst %.c,$(O)/%.o,$(LIB_SRC)) $(patsubst $(GEN)/%.c,$(O)/gen/%.o,$(GEN_C))
MAIN_OBJ := $(O)/cmd/main.o

UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(patsubst tests/unit/%.c,$(B)/tests/unit/%,$(UNIT_SRC))
TOOL_SRC := $(wildcard tests/tools/*.c)
TOOL_BIN := $(patsubst tests/tools/%.c,$(B)/tests/tools/%,$(TOOL_SRC))
VMT_SRC  := $(wildcard tests/vm/*.c)
VMT_BIN  := $(patsubst tests/vm/%.c,$(B)/tests/vm/%,$(VMT_SRC))
WL_SRC   := $(wildcard tests/workloads/*.c)
WL_BIN   := $(patsubst tests/workloads/%.c,$(B)/tests/workloads/%,$(WL_SRC))
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN := $(patsubst tests/fuzz/%.c,$(B)/fuzz/%,$(FUZZ_SRC))
FUZZ_SECONDS ?= 300

.PHONY: all deps layers check check-kernels unit test-bins fuzz fuzz-bins fuzz-brief bench bench-transport bench-migrate bench-clients soak-storm-workers bench-snapshot bench-vm bench-rootfs demo clean format $(B)/ferry FORCE
.SECONDARY:

all: $(B)/ferry $(B)/ferry-criu-hook

$(B)/ferry: $(O)/ferry $(B)/ferry-criu-hook
	@cmp -s $< $@ || cp $< $@

# CRIU's action script for post-copy migrations, next to build/ferry: static
# and library-free, it runs while the tenant is frozen. Its logic, criu/hook.c
# (libc only), is also in libferry for the `ferry criu-hook` fallback.
HOOK_SRC := hook/ferry_criu_hook.c criu/hook.c
$(B)/ferry-criu-hook: $(HOOK_SRC) criu/hook.h
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -I. -static -o $@ $(HOOK_SRC)

$(O)/ferry: $(MAIN_OBJ) $(LIB_OBJ)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Generated protobuf-c code; every object waits for every generated header.
$(GEN)/%.pb-c.c $(GEN)/%.pb-c.h: proto/%.proto
	@mkdir -p $(GEN)
	protoc-c --proto_path=proto --c_out=$(GEN) $<

$(GEN)/rpc.pb-c.c $(GEN)/rpc.pb-c.h: $(CRIU_RPC)
	@mkdir -p $(GEN)
	protoc-c --proto_path=$(dir $(CRIU_RPC)) --c_out=$(GEN) $(CRIU_RPC)

GEN_H := $(GEN_C:.c=.h)

# "lib/version.h": rewritten only when the version changed, so that only what
# includes it is rebuilt (the objects' .d files name it).
$(VERSION_H): FORCE
	@mkdir -p $(dir $@)
	@printf '/* Generated by the Makefile: git describe, or its VERSION. */\n#define FERRY_VERSION "%s"\n' \
		'$(FERRY_VERSION)' >$@.tmp
	@if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv $@.tmp $@; fi

$(O)/%.o: %.c | $(GEN_H) $(VERSION_H)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(O)/gen/%.o: $(GEN)/%.c | $(GEN_H)
	@mkdir -p $(dir $@)
	$(CC) $(filter-out -Werror,$(CFLAGS)) -c -o $@ $<

# Unit tests link the library as an archive: only the objects a test needs are
# pulled in (cmd/*.o refer to cmd_report in cmd/main.c, which tests lack).
$(O)/libferry.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(B)/tests/unit/%: tests/unit/%.c $(O)/libferry.a | $(GEN_H)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit -o $@ $< $(O)/libferry.a $(LDFLAGS) $(LDLIBS)

# Test-only tools (e.g. a misbehaving peer), linked like the unit tests.
$(B)/tests/tools/%: tests/tools/%.c $(O)/libferry.a | $(GEN_H)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(O)/libferry.a $(LDFLAGS) $(LDLIBS)

# The VM tests' tools (tests/vm), linked like the unit tests.
$(B)/tests/vm/%: tests/vm/%.c $(O)/libferry.a | $(GEN_H)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(O)/libferry.a $(LDFLAGS) $(LDLIBS)

# Workloads run inside tenants' minimal root file systems: static binaries.
$(B)/tests/workloads/%: tests/workloads/%.c tests/workloads/zdtm.h
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Werror -static -pthread -o $@ $<

test-bins: $(B)/ferry $(UNIT_BIN) $(WL_BIN) $(TOOL_BIN) $(VMT_BIN)

# libFuzzer targets (built with FUZZ=1) and their seeds (tests/fuzz/seeds.c,
# built like a test tool: valid frames, manifests and requests).
$(B)/fuzz/%: tests/fuzz/%.c tests/fuzz/memchan.h $(O)/libferry.a | $(GEN_H)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests -fsanitize=fuzzer -o $@ $< $(O)/libferry.a $(LDFLAGS) $(LDLIBS)

fuzz-bins: $(FUZZ_BIN)

fuzz:
	@$(MAKE) --no-print-directory test-bins
	@$(MAKE) --no-print-directory FUZZ=1 fuzz-bins
	@bash tests/fuzz/run.sh $(FUZZ_SECONDS)

fuzz-brief:
	@$(MAKE) --no-print-directory test-bins
	@$(MAKE) --no-print-directory FUZZ=1 fuzz-bins
	@bash tests/fuzz/run.sh 4

deps:
	@bash scripts/deps.sh

# No include runs up the layer order (docs/architecture.md); no function over
# 80 lines.
layers:
	@bash scripts/check-layers.sh
	@bash scripts/check-funcs.sh

unit: test-bins
	@bash tests/run.sh --unit

check: deps layers
	@$(MAKE) --no-print-directory test-bins
	@$(MAKE) --no-print-directory fuzz-brief
	@bash tests/run.sh

# The migration tests inside a QEMU guest that boots Debian 12's stock kernel
# (soft-dirty: pre-copy runs for real); KERNEL_TESTS=precopy for the
# pre-copy set (tests/kernel/check-kernels.sh).
check-kernels: deps
	@$(MAKE) --no-print-directory test-bins
	@KERNEL_TESTS="$(KERNEL_TESTS)" bash tests/kernel/check-kernels.sh

bench: deps
	@$(MAKE) --no-print-directory test-bins
	@bash tests/bench/bench-dump.sh

bench-migrate: deps
	@$(MAKE) --no-print-directory test-bins
	@bash tests/bench/bench-migrate.sh

bench-snapshot: deps
	@$(MAKE) --no-print-directory test-bins
	@bash tests/bench/bench-snapshot.sh

# VM migration: ferry (pre-copy, stop-copy) against QEMU's native migration
# with and without its TLS, same run, same accelerator.
bench-vm: deps
	@$(MAKE) --no-print-directory test-bins
	@bash tests/bench/bench-vm.sh

bench-rootfs: deps
	@$(MAKE) --no-print-directory test-bins
	@bash tests/bench/bench-rootfs.sh

bench-clients: deps
	@$(MAKE) --no-print-directory test-bins
	@bash tests/bench/bench-clients.sh

soak-storm-workers: deps
	@$(MAKE) --no-print-directory test-bins
	@SECOND=1 ROUNDS=$${ROUNDS:-50} bash tests/run.sh busy_storm

bench-transport: deps
	@$(MAKE) --no-print-directory test-bins
	@bash tests/bench/bench-transport.sh

demo: deps
	@$(MAKE) --no-print-directory test-bins
	@bash scripts/demo.sh

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(B)

-include $(shell find $(B) -name '*.d' -type f 2>/dev/null)
