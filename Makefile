# amber: checkpoint/restore for Linux process trees.
#
#   make               build build/amber and build/libamber.a (nothing else; never installs)
#   make deps          install the Debian packages the build, tests and VM need (root;
#                      make demo/check/test install what they need themselves)
#   make check         unit tests of pure logic, the layering check, crit checks
#   make test          everything: unit, page server, zdtm in every mode, ASAN, QEMU guests
#   make demo          checkpoint a running workload, restore it, show it continue
#   make bench         benchmarks (print ratios against in-run baselines)
#   make install       PREFIX=/usr/local DESTDIR= MANDIR=$(PREFIX)/share/man
#
# The layering of src/ (cli -> dump/restore/lazy/pageserver -> files/mem
# -> image -> base) is checked by scripts/layers.sh over the objects'
# symbols (make layers, part of make check).

CC       ?= gcc
AR       ?= ar
PKG_CONFIG ?= pkg-config
PROTOC_C ?= protoc-c
B        := build

PREFIX   ?= /usr/local
BINDIR   ?= $(PREFIX)/sbin
LIBDIR   ?= $(PREFIX)/lib
INCDIR   ?= $(PREFIX)/include
MANDIR   ?= $(PREFIX)/share/man
DESTDIR  ?=

WARN     := -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers
CFLAGS   ?= -O2 -g
PC_LIBS  := libprotobuf-c gnutls libnftables libnl-3.0 libnl-route-3.0
PC_CFLAGS = $(shell $(PKG_CONFIG) --cflags $(PC_LIBS) 2>/dev/null || echo -I/usr/include/libnl3)
PC_LDLIBS = $(shell $(PKG_CONFIG) --libs $(PC_LIBS) 2>/dev/null || echo -lprotobuf-c -lgnutls -lnftables -lnl-route-3 -lnl-3)
# libcompel (Debian's criu package) ships no .pc file.
AMBER_CFLAGS = -std=gnu11 $(WARN) -D_GNU_SOURCE -Iinclude -Isrc -I$(B)/proto -pthread $(PC_CFLAGS)
LDLIBS   = $(PC_LDLIBS) -lcompel -pthread
DEPFLAGS := -MMD -MP

ASAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

# Protobuf sources are generated in one place, build/proto, for every user.
PROTOS   := $(wildcard proto/*.proto)
PB_C     := $(patsubst proto/%.proto,$(B)/proto/%.pb-c.c,$(PROTOS))
PB_H     := $(PB_C:.c=.h)

LIB_SRCS := $(filter-out src/restore/restorer/%,$(wildcard src/*/*.c))
LIB_SRCS := $(filter-out src/cli/%,$(LIB_SRCS))
CLI_SRCS := $(wildcard src/cli/*.c)

LIB_OBJS := $(patsubst %.c,$(B)/%.o,$(LIB_SRCS)) $(PB_C:.c=.o) $(B)/restorer_blob.o
CLI_OBJS := $(patsubst %.c,$(B)/%.o,$(CLI_SRCS))
ASAN_LIB_OBJS := $(patsubst %.c,$(B)/asan/%.o,$(LIB_SRCS)) \
		 $(patsubst $(B)/%.c,$(B)/asan/%.o,$(PB_C)) $(B)/restorer_blob.o
ASAN_CLI_OBJS := $(patsubst %.c,$(B)/asan/%.o,$(CLI_SRCS))

# The restorer runs after the restoring process has unmapped libc: no
# libc, no stack protector, no absolute relocations (checked below).
RST_CFLAGS := -std=gnu11 $(WARN) -O2 -g0 -fPIE -nostdlib -ffreestanding -fno-stack-protector \
	      -fno-asynchronous-unwind-tables -fno-unwind-tables -fno-builtin -mno-red-zone \
	      -fno-jump-tables -fcf-protection=none -Isrc -D__AMBER_RESTORER__
RST_SRCS := $(wildcard src/restore/restorer/*.c)
RST_OBJS := $(patsubst %.c,$(B)/%.o,$(RST_SRCS))

# The plugin for stock CRIU (criu --libdir): its own objects, built -fPIC;
# print_on_level() comes from the criu binary that loads it.
PLUGIN_SRCS := criu-plugin/amber_criu.c src/image/sums.c src/image/image.c src/base/util.c \
	       src/base/fault.c
PLUGIN := $(B)/criu-plugin/amber_criu.so

.DELETE_ON_ERROR:
.PHONY: all deps asan lib tests check run-check unit layers test pserver zdtm zdtm-asan demo bench soak \
	clean format vmtest kernel vm-ci install uninstall man plugin
all: $(B)/amber

plugin: $(PLUGIN)
$(PLUGIN): $(PLUGIN_SRCS) $(PB_H)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(AMBER_CFLAGS) -fPIC -shared -fvisibility=hidden -ffunction-sections \
		-fdata-sections -Wl,--gc-sections -Wl,-z,defs -Wl,--unresolved-symbols=ignore-in-object-files \
		-o $@ $(PLUGIN_SRCS)
	@bad=$$(nm -D --undefined-only $@ | awk '$$1 == "U" && $$2 !~ /@/ && $$2 != "criu_get_image_dir" && $$2 != "print_on_level" { print $$2 }'); \
	if [ -n "$$bad" ]; then echo "$@: needs symbols criu does not export: $$bad" >&2; rm -f $@; exit 1; fi

deps:
	@bash scripts/deps.sh all

lib: $(B)/libamber.a

$(B)/libamber.a: $(LIB_OBJS)
	@rm -f $@
	$(AR) rcs $@ $^

$(B)/amber: $(CLI_OBJS) $(B)/libamber.a
	$(CC) $(CFLAGS) -o $@ $(CLI_OBJS) $(B)/libamber.a $(LDLIBS)

asan: $(B)/asan/amber
$(B)/asan/libamber.a: $(ASAN_LIB_OBJS)
	@rm -f $@
	$(AR) rcs $@ $^
$(B)/asan/amber: $(ASAN_CLI_OBJS) $(B)/asan/libamber.a
	$(CC) $(CFLAGS) $(ASAN_FLAGS) -o $@ $(ASAN_CLI_OBJS) $(B)/asan/libamber.a $(LDLIBS)

$(B)/proto/%.pb-c.c $(B)/proto/%.pb-c.h: proto/%.proto
	@mkdir -p $(B)/proto
	$(PROTOC_C) --proto_path=proto --c_out=$(B)/proto $<
# Keep the generated sources: tests and benchmarks compile against them.
.SECONDARY: $(PB_C) $(PB_H)

$(B)/proto/%.pb-c.o: $(B)/proto/%.pb-c.c | $(PB_H)
	$(CC) -O2 -g $(DEPFLAGS) -I$(B)/proto -c -o $@ $<
$(B)/asan/proto/%.pb-c.o: $(B)/proto/%.pb-c.c | $(PB_H)
	@mkdir -p $(dir $@)
	$(CC) -O2 -g $(ASAN_FLAGS) $(DEPFLAGS) -I$(B)/proto -c -o $@ $<

# Every object waits for the generated headers (order only); -MMD records
# which headers it really includes for the next build.
$(B)/src/%.o: src/%.c | $(PB_H)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(AMBER_CFLAGS) $(DEPFLAGS) -c -o $@ $<
$(B)/asan/src/%.o: src/%.c | $(PB_H)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(AMBER_CFLAGS) $(ASAN_FLAGS) $(DEPFLAGS) -c -o $@ $<

# --- restorer blob ---------------------------------------------------------
$(B)/src/restore/restorer/%.o: src/restore/restorer/%.c
	@mkdir -p $(dir $@)
	$(CC) $(RST_CFLAGS) $(DEPFLAGS) -c -o $@ $<
$(B)/restorer.elf: $(RST_OBJS) src/restore/restorer/restorer.lds
	ld -static -pie --no-dynamic-linker -T src/restore/restorer/restorer.lds -o $@ \
		$(filter %.o,$^)
	@if readelf -r $@ | grep -q 'R_X86_64'; then \
		echo "restorer has relocations; it must be position independent" >&2; \
		readelf -r $@ >&2; rm -f $@; exit 1; fi
$(B)/restorer.bin: $(B)/restorer.elf
	objcopy -O binary -j .text -j .rodata -j .data -j .bss --set-section-flags .bss=alloc,load,contents $< $@
$(B)/restorer_blob.o: $(B)/restorer.bin
	printf '\t.section .rodata\n\t.globl amber_restorer_blob, amber_restorer_blob_end\n\t.balign 4096\namber_restorer_blob:\n\t.incbin "%s"\namber_restorer_blob_end:\n\t.section .note.GNU-stack,"",@progbits\n' $< > $(B)/restorer_blob.S
	$(CC) -c -o $@ $(B)/restorer_blob.S

-include $(shell find $(B) -name '*.d' 2>/dev/null)

# --- man page --------------------------------------------------------------
man: $(B)/amber.8
$(B)/amber.8: docs/amber.8.md
	@mkdir -p $(B)
	bash scripts/md2man.sh $< > $@

# --- install ---------------------------------------------------------------
install: $(B)/amber $(B)/libamber.a $(B)/amber.8 $(PLUGIN)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCDIR) $(DESTDIR)$(MANDIR)/man8 \
		$(DESTDIR)$(LIBDIR)/criu
	install -m 0644 $(PLUGIN) $(DESTDIR)$(LIBDIR)/criu/amber_criu.so
	install -m 0755 $(B)/amber $(DESTDIR)$(BINDIR)/amber
	install -m 0644 $(B)/libamber.a $(DESTDIR)$(LIBDIR)/libamber.a
	install -m 0644 include/amber.h $(DESTDIR)$(INCDIR)/amber.h
	install -m 0644 $(B)/amber.8 $(DESTDIR)$(MANDIR)/man8/amber.8

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/amber $(DESTDIR)$(LIBDIR)/libamber.a \
	      $(DESTDIR)$(INCDIR)/amber.h $(DESTDIR)$(MANDIR)/man8/amber.8 \
	      $(DESTDIR)$(LIBDIR)/criu/amber_criu.so

# --- tests ---------------------------------------------------------------
# Each target installs what it needs first (scripts/deps.sh), then builds:
# two steps in order, so make -j never compiles before the headers exist.
tests: $(B)/amber $(B)/asan/amber $(PLUGIN)
	$(MAKE) -s -C test/zdtm
	$(MAKE) -s -C test/unit
	$(MAKE) -s -C test/pserver

PYTEST := /usr/bin/python3 -m pytest

layers: $(B)/libamber.a
	bash scripts/layers.sh $(B)

# Unit tests of pure logic, the layering, and crit reading amber's protos.
check:
	@bash scripts/deps.sh test
	$(MAKE) tests
	$(MAKE) run-check
unit: check
run-check: layers
	$(MAKE) -s -C test/unit run
	@rm -rf $(B)/pyproto && mkdir -p $(B)/pyproto $(B)/crit-check
	protoc --proto_path=proto --python_out=$(B)/pyproto proto/*.proto
	/usr/bin/python3 proto/check_crit_compat.py $(B)/pyproto $(B)/crit-check
	bash test/crit_images.sh $(B)/amber
	$(MAKE) fuzz-smoke

# --- fuzzing ---------------------------------------------------------------
# libFuzzer harnesses of every parser of hostile input (test/fuzz/README.md),
# built by clang-14 into build/fuzz/. make fuzz runs each for FUZZ_SECONDS
# (60); make fuzz-smoke (part of make check) replays test/fuzz/regressions/
# and runs each for about 10 s.
FUZZ_SECONDS ?= 60
.PHONY: fuzz fuzz-smoke
fuzz: $(PB_C) $(PB_H)
	$(MAKE) -C test/fuzz run FUZZ_SECONDS=$(FUZZ_SECONDS)
fuzz-smoke: $(PB_C) $(PB_H)
	$(MAKE) -C test/fuzz smoke

# The zdtm suite, in every mode this machine can run: nodump checks the
# tests themselves, dump checkpoints and restores each one, pre-dump and
# snaps go through incremental chains, lazy restores through userfaultfd and
# `amber lazy-pages`, pre-dump-lazy restores pre-dump's chain lazily,
# remote-lazy is post-copy (every page fetched from a lazy page server),
# page-server streams the pages through `amber page-server`, and
# page-server-pre-dump streams pre-dump's chain through one (iterative
# pre-copy migration).
# The real programs run too, plus the damaged-image and failed-dump tests.
# test_interop.py (once, not per mode) needs CRIU 4.2: deps.sh criu builds
# it with ../shared/anchors/build-criu.sh into /var/tmp/anchors.
ZDTM_ALL_MODES := nodump,dump,pre-dump,snaps,lazy,pre-dump-lazy,remote-lazy,page-server,page-server-pre-dump
zdtm:
	@bash scripts/deps.sh test
	$(MAKE) tests
	CRIU="$$(bash scripts/deps.sh criu)" AMBER=$(CURDIR)/$(B)/amber ZDTM_MODES=$(ZDTM_ALL_MODES) \
		$(PYTEST) -q -rs -p no:cacheprovider test/zdtm

# The page server: protocol, security, fuzzing, TLS, two network namespaces.
pserver:
	@bash scripts/deps.sh test
	$(MAKE) tests
	AMBER=$(CURDIR)/$(B)/amber $(PYTEST) -q -rs -p no:cacheprovider test/pserver

# The same against the ASAN+UBSan build: any sanitizer report fails the
# test that caused it (the runner checks amber's output and ASAN's
# log_path files, see zdtm_runner.sanitizer_env).
zdtm-asan:
	@bash scripts/deps.sh test
	$(MAKE) tests
	CRIU="$$(bash scripts/deps.sh criu)" AMBER=$(CURDIR)/$(B)/asan/amber ZDTM_MODES=dump \
		ZDTM_NO_BUILD=1 $(PYTEST) -q -rs -p no:cacheprovider test/zdtm

# The QEMU part: our PKRAM kernel built and tested across kexec, Debian's
# 6.12 kernel for soft-dirty (the incremental zdtm modes). AMBER_NO_VM=1
# skips it, saying so.
vm-ci:
	@bash scripts/deps.sh all
	$(MAKE) tests
	@if [ "$(AMBER_NO_VM)" = 1 ]; then \
		echo "SKIP: kernel build and QEMU guest suites (AMBER_NO_VM=1): PKRAM, kexec and soft-dirty untested"; \
	else bash test/vm/ci.sh; fi

# Everything, in order (the README's test command).
# The guests run beside zdtm and the ASAN pass (scripts/test-beside.sh);
# CRIU 4.2 and every test binary are built before, so nothing builds twice.
test:
	@bash scripts/deps.sh all
	@bash scripts/deps.sh criu >/dev/null
	$(MAKE) check
	$(MAKE) pserver
	$(MAKE) tests
	bash scripts/test-beside.sh "$(MAKE)" $(B)

demo:
	@bash scripts/deps.sh test
	$(MAKE) $(B)/amber $(B)/demo_workload
	bash scripts/demo.sh

$(B)/demo_workload: scripts/demo_workload.c
	@mkdir -p $(B)
	$(CC) $(CFLAGS) -std=gnu11 $(WARN) -D_GNU_SOURCE -o $@ $<

# Leak hunt: SOAK_CYCLES (1000) dump/restore cycles (bench/soak/soak.py);
# make test runs 20 of them (test/zdtm/test_soak.py).
SOAK_CYCLES ?= 1000
soak: all tests
	nice /usr/bin/python3 bench/soak/soak.py --cycles $(SOAK_CYCLES)

bench:
	@bash scripts/deps.sh test
	$(MAKE) $(B)/amber
	$(MAKE) -s -C bench
	bash bench/run.sh

vmtest:
	bash test/vm/vmtest.sh

kernel:
	bash kernel/build.sh

format:
	clang-format -i $(LIB_SRCS) $(CLI_SRCS) $(wildcard include/*.h src/*/*.h src/restore/restorer/*.[ch])

clean:
	rm -rf $(B)
	$(MAKE) -s -C test/zdtm clean
