# ferry: build, test, benchmark, demo.
#   make            build build/ferry
#   make ASAN=1     build with AddressSanitizer + UBSan
#   make deps       install what the project needs (idempotent)
#   make check      deps + layer order + build + unit and integration tests
#   make bench      dump/restore benchmark against raw CRIU
#   make bench-migrate  live migration between simulated hosts vs a CRIU+tar baseline
#   make demo       the main job, end to end
CC      ?= gcc
PKGS    := libnl-route-3.0 libnl-3.0 libprotobuf-c liblz4 openssl
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

B        := build
O        := $(B)/obj-$(VARIANT)
GEN      := $(B)/proto
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
WL_SRC   := $(wildcard tests/workloads/*.c)
WL_BIN   := $(patsubst tests/workloads/%.c,$(B)/tests/workloads/%,$(WL_SRC))

.PHONY: all deps layers check unit test-bins bench bench-transport bench-migrate demo clean format $(B)/ferry
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

$(O)/%.o: %.c | $(GEN_H)
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

# Workloads run inside tenants' minimal root file systems: static binaries.
$(B)/tests/workloads/%: tests/workloads/%.c tests/workloads/zdtm.h
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Werror -static -pthread -o $@ $<

test-bins: $(B)/ferry $(UNIT_BIN) $(WL_BIN) $(TOOL_BIN)

deps:
	@bash scripts/deps.sh

# No include runs up the layer order (docs/architecture.md).
layers:
	@bash scripts/check-layers.sh

unit: test-bins
	@bash tests/run.sh --unit

check: deps layers
	@$(MAKE) --no-print-directory test-bins
	@bash tests/run.sh

bench: deps
	@$(MAKE) --no-print-directory test-bins
	@bash tests/bench/bench-dump.sh

bench-migrate: deps
	@$(MAKE) --no-print-directory test-bins
	@bash tests/bench/bench-migrate.sh

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

-include $(shell find $(B) -name '*.d' 2>/dev/null)
