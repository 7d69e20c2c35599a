# amber: checkpoint/restore for Linux process trees.
#
#   make          build build/amber (and build/asan/amber)
#   make test     unit tests, then the zdtm suite (normal and ASAN builds)
#   make demo     checkpoint a running workload, restore it, show it continue
#   make bench    benchmarks (print ratios against in-run baselines)

CC       ?= gcc
B        := build
PROTOC_C ?= protoc-c

WARN     := -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers
CFLAGS   ?= -O2 -g
CFLAGS   += -std=gnu11 $(WARN) -D_GNU_SOURCE -Isrc -I$(B)/proto -pthread
LDLIBS   := -lprotobuf-c -lcompel -lgnutls -pthread

ASAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

PROTOS   := $(wildcard proto/*.proto)
PB_C     := $(patsubst proto/%.proto,$(B)/proto/%.pb-c.c,$(PROTOS))
PB_H     := $(PB_C:.c=.h)
SRCS     := $(wildcard src/*.c) $(wildcard src/cli/*.c)
OBJS     := $(patsubst %.c,$(B)/%.o,$(SRCS)) $(PB_C:.c=.o) $(B)/restorer_blob.o
ASAN_OBJS := $(patsubst %.c,$(B)/asan/%.o,$(SRCS)) $(patsubst $(B)/%.c,$(B)/asan/%.o,$(PB_C)) $(B)/restorer_blob.o

# The restorer runs after the restoring process has unmapped libc: no
# libc, no stack protector, no absolute relocations (checked below).
RST_CFLAGS := -std=gnu11 $(WARN) -O2 -g0 -fPIE -nostdlib -ffreestanding -fno-stack-protector \
	      -fno-asynchronous-unwind-tables -fno-unwind-tables -fno-builtin -mno-red-zone \
	      -fno-jump-tables -fcf-protection=none -Isrc -D__AMBER_RESTORER__
RST_SRCS := $(wildcard src/restorer/*.c)
RST_OBJS := $(patsubst %.c,$(B)/%.o,$(RST_SRCS))

.PHONY: all deps asan test unit zdtm pserver demo bench clean format vmtest kernel vm-ci
all: deps $(B)/amber $(B)/asan/amber tests

deps:
	@bash scripts/deps.sh

$(B)/amber: $(OBJS)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

asan: $(B)/asan/amber
$(B)/asan/amber: $(ASAN_OBJS)
	$(CC) $(CFLAGS) $(ASAN_FLAGS) -o $@ $^ $(LDLIBS)

$(B)/proto/%.pb-c.c $(B)/proto/%.pb-c.h: proto/%.proto
	@mkdir -p $(B)/proto
	$(PROTOC_C) --proto_path=proto --c_out=$(B)/proto $<

$(B)/proto/%.pb-c.o: $(B)/proto/%.pb-c.c $(PB_H)
	$(CC) -O2 -g -I$(B)/proto -c -o $@ $<
$(B)/asan/proto/%.pb-c.o: $(B)/proto/%.pb-c.c $(PB_H)
	@mkdir -p $(dir $@)
	$(CC) -O2 -g $(ASAN_FLAGS) -I$(B)/proto -c -o $@ $<

$(B)/src/%.o: src/%.c $(PB_H) $(wildcard src/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<
$(B)/asan/src/%.o: src/%.c $(PB_H) $(wildcard src/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(ASAN_FLAGS) -c -o $@ $<

# --- restorer blob ---------------------------------------------------------
$(B)/src/restorer/%.o: src/restorer/%.c $(wildcard src/restorer/*.h) src/restorer_args.h src/csum.h
	@mkdir -p $(dir $@)
	$(CC) $(RST_CFLAGS) -c -o $@ $<
$(B)/src/restorer/%.o: src/restorer/%.S
	@mkdir -p $(dir $@)
	$(CC) $(RST_CFLAGS) -c -o $@ $<
$(B)/restorer.elf: $(RST_OBJS) $(patsubst %.S,$(B)/%.o,$(wildcard src/restorer/*.S)) src/restorer/restorer.lds
	ld -static -pie --no-dynamic-linker -T src/restorer/restorer.lds -o $@ \
		$(filter %.o,$^)
	@if readelf -r $@ | grep -q 'R_X86_64'; then \
		echo "restorer has relocations; it must be position independent" >&2; \
		readelf -r $@ >&2; rm -f $@; exit 1; fi
$(B)/restorer.bin: $(B)/restorer.elf
	objcopy -O binary -j .text -j .rodata -j .data -j .bss --set-section-flags .bss=alloc,load,contents $< $@
$(B)/restorer_blob.o: $(B)/restorer.bin
	printf '\t.section .rodata\n\t.globl amber_restorer_blob, amber_restorer_blob_end\n\t.balign 4096\namber_restorer_blob:\n\t.incbin "%s"\namber_restorer_blob_end:\n\t.section .note.GNU-stack,"",@progbits\n' $< > $(B)/restorer_blob.S
	$(CC) -c -o $@ $(B)/restorer_blob.S

# --- tests -----------------------------------------------------------------
.PHONY: tests
tests:
	@if [ -f test/zdtm/Makefile ]; then $(MAKE) -s -C test/zdtm; fi
	@if [ -f test/unit/Makefile ]; then $(MAKE) -s -C test/unit; fi
	@if [ -f test/pserver/Makefile ]; then $(MAKE) -s -C test/pserver; fi

PYTEST := /usr/bin/python3 -m pytest

unit: all
	$(MAKE) -s -C test/unit run
	@rm -rf $(B)/pyproto && mkdir -p $(B)/pyproto $(B)/crit-check
	protoc --proto_path=proto --python_out=$(B)/pyproto proto/*.proto
	/usr/bin/python3 proto/check_crit_compat.py $(B)/pyproto $(B)/crit-check
	bash test/crit_images.sh $(B)/amber

# The zdtm suite, in every mode this machine can run: nodump checks the
# tests themselves, dump checkpoints and restores each one, pre-dump and
# snaps go through incremental chains, lazy restores through userfaultfd and
# `amber lazy-pages`, pre-dump-lazy restores pre-dump's chain lazily,
# remote-lazy is post-copy (every page fetched from a lazy page server),
# page-server streams the pages through `amber page-server`, and
# page-server-pre-dump streams pre-dump's chain through one (iterative
# pre-copy migration).
# The real programs run too, plus the damaged-image and failed-dump tests.
zdtm: all
	AMBER=$(CURDIR)/$(B)/amber ZDTM_MODES=nodump,dump,pre-dump,snaps,lazy,pre-dump-lazy,remote-lazy,page-server,page-server-pre-dump $(PYTEST) -q -p no:cacheprovider test/zdtm

# The page server: protocol, security, fuzzing, TLS, two network namespaces.
pserver: all
	AMBER=$(CURDIR)/$(B)/amber $(PYTEST) -q -p no:cacheprovider test/pserver

# The same against the ASAN+UBSan build: any sanitizer report fails the
# test that caused it (the runner checks amber's output and ASAN's
# log_path files, see zdtm_runner.sanitizer_env).
zdtm-asan: all
	AMBER=$(CURDIR)/$(B)/asan/amber ZDTM_MODES=dump ZDTM_NO_BUILD=1 $(PYTEST) -q -p no:cacheprovider test/zdtm

# The QEMU part: our PKRAM kernel built and tested across kexec, Debian's
# 6.12 kernel for soft-dirty (the incremental zdtm modes). AMBER_NO_VM=1
# skips it, saying so.
vm-ci: all
	@if [ "$(AMBER_NO_VM)" = 1 ]; then \
		echo "SKIP: kernel build and QEMU guest suites (AMBER_NO_VM=1): PKRAM, kexec and soft-dirty untested"; \
	else bash test/vm/ci.sh; fi

test: unit pserver zdtm zdtm-asan vm-ci

demo: all $(B)/demo_workload
	bash scripts/demo.sh

$(B)/demo_workload: scripts/demo_workload.c
	@mkdir -p $(B)
	$(CC) $(CFLAGS) -o $@ $<

bench: all
	$(MAKE) -s -C bench
	bash bench/run.sh

vmtest:
	bash test/vm/vmtest.sh

kernel:
	bash kernel/build.sh

format:
	clang-format -i $(SRCS) $(wildcard src/*.h src/restorer/*.[ch] src/cli/*.h)

clean:
	rm -rf $(B)
	@if [ -f test/zdtm/Makefile ]; then $(MAKE) -s -C test/zdtm clean; fi
