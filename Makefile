# ccm-early: the static musl binary (default), the sanitizer dev build, the
# tests, the fuzzers, the benchmarks and the demo.
#
#   make            static musl binary ./ccm-early (builds rdma-core and
#                   libsodium from Debian source tarballs into build/sysroot)
#   make dev        glibc build with ASan/UBSan: build/dev/ccm-early + tests
#   make test       installs what it needs, runs every test, prints a tally
#   make fuzz       runs every fuzz target longer (FUZZ_SECONDS each)
#   make demo       two nodes handshaking on this machine
#   make bench      benchmarks, each printing a ratio against a baseline
#   make sim        the deterministic simulator over SEEDS seeds (default 40000,
#                   about ten minutes on two cores)
#   make install    DESTDIR/PREFIX install of the static binary
#   make deb        the Debian package build/ccm-early_VERSION_ARCH.deb
#   make man        the man pages (doc/*.scd, scdoc) into build/man

BUILD   ?= build
V       ?= 0
Q       := $(if $(filter 1,$(V)),,@)
SYSROOT := $(abspath $(BUILD)/sysroot)
PREFIX  ?= /usr
FUZZ_SECONDS ?= 60

WARN    := -Wall -Wextra -Werror -Wpedantic -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wvla
# Headers are named with their layer ("proto/hs.h"), so an include shows
# which way a dependency points.  -MMD -MP: each object lists the headers
# it read, so a changed header rebuilds exactly what uses it.
STD     := -std=c11 -D_GNU_SOURCE -Ilib -MMD -MP

LIB_SRC := $(sort $(wildcard lib/*/*.c))
CLIENT_PROGS := ccm-fmon ccm-nvmirror
.DEFAULT_GOAL := all

# --- static musl build -------------------------------------------------------
STATIC_CC      := musl-gcc
STATIC_CFLAGS  := $(STD) $(WARN) -Os -ffunction-sections -fdata-sections \
		  -fno-asynchronous-unwind-tables -isystem $(SYSROOT)/include \
		  -DRDMA_STATIC_PROVIDERS=rxe,mlx5
STATIC_LDFLAGS := -static -Wl,--gc-sections -Wl,-u,verbs_provider_rxe -Wl,-u,verbs_provider_mlx5
STATIC_OBJ     := $(patsubst %.c,$(BUILD)/static/%.o,ccm-early.c $(LIB_SRC))
STATIC_STAMPS  := $(SYSROOT)/.rdma-core.stamp $(SYSROOT)/.libsodium.stamp
SIZE_LIMIT     := 524288
# The manager's objects as an archive, for the clients and the benchmarks.
STATIC_AR      := $(BUILD)/static/libccm.a
STATIC_LIBS     = $$(PKG_CONFIG_LIBDIR=$(SYSROOT)/lib/pkgconfig pkg-config --static --libs libibverbs librdmacm) \
	       -L$(SYSROOT)/lib -lsodium

$(STATIC_AR): $(filter-out $(BUILD)/static/ccm-early.o,$(STATIC_OBJ))
	$(Q)rm -f $@
	$(Q)ar rcs $@ $^

all: ccm-early $(CLIENT_PROGS) man

# Installing packages happens once, before either library build starts.
deps-build:
	@scripts/deps.sh build

$(SYSROOT)/.rdma-core.stamp: scripts/build-rdma-core.sh scripts/debsrc.sh | deps-build
	scripts/build-rdma-core.sh $(BUILD)

$(SYSROOT)/.libsodium.stamp: scripts/build-libsodium.sh scripts/debsrc.sh | deps-build
	scripts/build-libsodium.sh $(BUILD)

$(BUILD)/static/%.o: %.c $(STATIC_STAMPS)
	@mkdir -p $(@D)
	@echo "  CC (musl)  $<"
	$(Q)$(STATIC_CC) $(STATIC_CFLAGS) -c $< -o $@

ccm-early: $(STATIC_OBJ) $(STATIC_STAMPS)
	@echo "  LD (musl)  $@"
	$(Q)$(STATIC_CC) $(STATIC_LDFLAGS) -o $@.unstripped $(STATIC_OBJ) $(STATIC_LIBS)
	$(Q)strip -o $@ $@.unstripped
	@size=$$(stat -c %s $@); \
	 echo "ccm-early: $$size bytes stripped (limit $(SIZE_LIMIT))"; \
	 test $$size -le $(SIZE_LIMIT) || { echo "ccm-early is over $(SIZE_LIMIT) bytes" >&2; exit 1; }

# --- the two clients: ccm-fmon, ccm-nvmirror (static musl, like ccm-early) ---
$(CLIENT_PROGS): ccm-%: $(BUILD)/static/clients/%.o $(STATIC_AR) $(STATIC_STAMPS)
	@echo "  LD (musl)  $@"
	$(Q)$(STATIC_CC) -static -Wl,--gc-sections -o $@.unstripped $< $(STATIC_AR) $(STATIC_LIBS)
	$(Q)strip -o $@ $@.unstripped

# --- the client library, libccm.a, and its pkg-config file ---------------------
# Its users link it into programs of their own, so only ccm.h's functions
# may be global in it: helpers such as errbuf_set or fdmsg_send would clash
# with (or be taken over by) a user's functions of the same names.  The
# objects become one relocatable object (ld -r) whose other symbols are
# made local; the rule then checks what the archive exports against ccm.h
# and links and runs a user whose own functions bear the internal names.
LIBCCM_SRC := lib/client/libccm.c lib/client/fdmsg.c lib/client/listenfds.c lib/base/errbuf.c \
	      lib/base/num.c lib/base/name.c lib/base/instance.c
LIBCCM_LP  := (
LIBCCM_API  = $(shell sed -n 's/^[a-z][^$(LIBCCM_LP)]*[ *]\(ccm_[a-z0-9_]*\)$(LIBCCM_LP).*/\1/p' \
		lib/client/ccm.h | sort)
LIBCCM_OBJ := $(BUILD)/static/libccm-client.o
$(BUILD)/libccm.a: $(patsubst %.c,$(BUILD)/static/%.o,$(LIBCCM_SRC)) lib/client/ccm.h \
		   tests/cli/libccm_collide.c
	@echo "  AR         $@"
	$(Q)rm -f $@ $(LIBCCM_OBJ).all
	$(Q)$(LD) -r -o $(LIBCCM_OBJ).all $(filter %.o,$^)
	$(Q)objcopy $(addprefix --keep-global-symbol=,$(LIBCCM_API)) $(LIBCCM_OBJ).all $(LIBCCM_OBJ)
	$(Q)rm -f $(LIBCCM_OBJ).all
	$(Q)ar rcs $@ $(LIBCCM_OBJ)
	$(Q)exported=$$(nm -g --defined-only $@ | awk 'NF == 3 { print $$3 }' | sort | tr '\n' ' '); \
	 if [ "$$exported" != "$(strip $(LIBCCM_API)) " ]; then \
		echo "$@ exports: $$exported" >&2; echo "ccm.h declares: $(LIBCCM_API)" >&2; \
		rm -f $@; exit 1; fi
	$(Q)$(STATIC_CC) $(STATIC_CFLAGS) -static -o $(BUILD)/static/libccm_collide \
		tests/cli/libccm_collide.c $@ && $(BUILD)/static/libccm_collide || { rm -f $@; exit 1; }

libccm: $(BUILD)/libccm.a

# --- man pages: doc/NAME.SECTION.scd -> build/man/NAME.SECTION (scdoc) ----------
MAN_SRC   := $(sort $(wildcard doc/*.scd))
MAN_PAGES := $(patsubst doc/%.scd,$(BUILD)/man/%,$(MAN_SRC))

$(BUILD)/man/%: doc/%.scd | deps-build
	@mkdir -p $(@D)
	@echo "  SCDOC      $@"
	$(Q)scdoc < $< > $@.tmp && mv $@.tmp $@

man: $(MAN_PAGES)

# bash-completion's directory (its pkg-config file says where), else the
# usual one under PREFIX.
BASH_COMPLETION_DIR ?= $(or $(shell pkg-config --define-variable=prefix=$(PREFIX) --variable=completionsdir bash-completion 2>/dev/null),$(PREFIX)/share/bash-completion/completions)

# --- dev build: glibc, dynamic, sanitizers ------------------------------------
DEV_CC      := gcc
SAN         := -fsanitize=address,undefined -fno-sanitize-recover=all
DEV_CFLAGS  := $(STD) $(WARN) -g -O1 -fno-omit-frame-pointer $(SAN)
DEV_LIBS    := -lrdmacm -libverbs -lsodium
DEV_OBJ     := $(patsubst %.c,$(BUILD)/dev/%.o,$(LIB_SRC))
DEV_AR      := $(BUILD)/dev/libccm.a
UNIT_SRC    := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN    := $(patsubst tests/unit/%.c,$(BUILD)/dev/tests/%,$(UNIT_SRC))

$(BUILD)/dev/%.o: %.c
	@mkdir -p $(@D)
	@echo "  CC (dev)   $<"
	$(Q)$(DEV_CC) $(DEV_CFLAGS) -c $< -o $@

$(DEV_AR): $(DEV_OBJ)
	$(Q)rm -f $@
	$(Q)ar rcs $@ $^

$(BUILD)/dev/ccm-early: $(BUILD)/dev/ccm-early.o $(DEV_AR)
	@echo "  LD (dev)   $@"
	$(Q)$(DEV_CC) $(SAN) -o $@ $< $(DEV_AR) $(DEV_LIBS)

$(BUILD)/dev/tests/%: tests/unit/%.c tests/unit/check.h $(DEV_AR)
	@mkdir -p $(@D)
	@echo "  TEST       $@"
	$(Q)$(DEV_CC) $(DEV_CFLAGS) -Itests/unit -o $@ $< $(DEV_AR) $(DEV_LIBS)

$(BUILD)/dev/ccm-fmon $(BUILD)/dev/ccm-nvmirror: $(BUILD)/dev/ccm-%: $(BUILD)/dev/clients/%.o $(DEV_AR)
	@echo "  LD (dev)   $@"
	$(Q)$(DEV_CC) $(SAN) -o $@ $< $(DEV_AR) $(DEV_LIBS)

dev: $(BUILD)/dev/ccm-early $(BUILD)/dev/ccm-fmon $(BUILD)/dev/ccm-nvmirror $(UNIT_BIN)

# --- the deterministic simulator (tests/sim): two whole keepers over the mem
# transport on a virtual clock.  Under the sanitizers for make test; built
# optimised, without them, for the long sweep of make sim.
SEEDS       ?= 40000
SIM_CFLAGS  := $(STD) $(WARN) -g -O2
SIM_OBJ     := $(patsubst %.c,$(BUILD)/sim/obj/%.o,$(LIB_SRC))

$(BUILD)/dev/tests/sim: tests/sim/sim.c $(DEV_AR)
	@mkdir -p $(@D)
	@echo "  SIM        $@"
	$(Q)$(DEV_CC) $(DEV_CFLAGS) -o $@ $< $(DEV_AR) $(DEV_LIBS)

$(BUILD)/sim/obj/%.o: %.c
	@mkdir -p $(@D)
	@echo "  CC (sim)   $<"
	$(Q)$(DEV_CC) $(SIM_CFLAGS) -c $< -o $@

$(BUILD)/sim/libccm.a: $(SIM_OBJ)
	$(Q)rm -f $@
	$(Q)ar rcs $@ $^

$(BUILD)/sim/sim: tests/sim/sim.c $(BUILD)/sim/libccm.a
	@echo "  SIM        $@"
	$(Q)$(DEV_CC) $(SIM_CFLAGS) -o $@ $< $(BUILD)/sim/libccm.a $(DEV_LIBS)

dev: $(BUILD)/dev/tests/sim

sim:
	scripts/deps.sh test
	$(MAKE) -j2 $(BUILD)/sim/sim
	tests/sim/sweep.sh $(BUILD)/sim/sim $(SEEDS)

# --- fuzz targets (clang libFuzzer) -------------------------------------------
FUZZ_SRC    := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BIN    := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(FUZZ_SRC))
FUZZ_CFLAGS := $(STD) $(WARN) -g -O1 -fsanitize=fuzzer-no-link,address,undefined
FUZZ_OBJ    := $(patsubst %.c,$(BUILD)/fuzz/obj/%.o,$(LIB_SRC))
FUZZ_AR     := $(BUILD)/fuzz/libccm.a

$(BUILD)/fuzz/obj/%.o: %.c
	@mkdir -p $(@D)
	@echo "  CC (fuzz)  $<"
	$(Q)clang $(FUZZ_CFLAGS) -c $< -o $@

$(FUZZ_AR): $(FUZZ_OBJ)
	$(Q)rm -f $@
	$(Q)ar rcs $@ $^

$(BUILD)/fuzz/%: tests/fuzz/%.c $(FUZZ_AR)
	@echo "  FUZZ       $@"
	$(Q)clang $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_AR) $(DEV_LIBS)

fuzz-build: $(FUZZ_BIN)

fuzz: $(FUZZ_BIN)
	tests/fuzz/run.sh $(BUILD)/fuzz $(FUZZ_SECONDS)

# --- benchmarks ---------------------------------------------------------------
BENCH_SRC   := $(sort $(wildcard bench/*.c))
BENCH_BIN   := $(patsubst bench/%.c,$(BUILD)/bench/%,$(BENCH_SRC))

# Static musl, like ccm-early itself, so a baseline's process start-up costs
# what ccm-early's does; benchmarks that use the manager's own code link the
# same objects the binary is made of.
$(BUILD)/bench/%: bench/%.c $(STATIC_AR)
	@mkdir -p $(@D)
	@echo "  BENCH      $@"
	$(Q)$(STATIC_CC) $(STATIC_CFLAGS) -O2 $(STATIC_LDFLAGS) -o $@ $< $(STATIC_AR) $(STATIC_LIBS)

# --- keyless_rdma, the keyless host of tests/vm/test_rdma.sh: static musl
# with the verbs stack, for the qemu guests, like the benchmarks above.
$(BUILD)/tests/keyless_rdma: tests/vm/keyless_rdma.c $(STATIC_AR)
	@mkdir -p $(@D)
	@echo "  LD (musl)  $@"
	$(Q)$(STATIC_CC) $(STATIC_CFLAGS) -O2 $(STATIC_LDFLAGS) -o $@ $< $(STATIC_AR) $(STATIC_LIBS)

# --- ccm-stream, the streaming test client of tests/links (libccm only):
# under the sanitizers for the tests here, static musl for the qemu guests.
# (bench/failover is a benchmark like the others: the rule above builds it.)
$(BUILD)/dev/ccm-stream: tests/links/stream.c lib/client/ccm.h $(DEV_AR)
	@echo "  LD (dev)   $@"
	$(Q)$(DEV_CC) $(DEV_CFLAGS) -o $@ $< $(DEV_AR) $(DEV_LIBS)

$(BUILD)/ccm-stream: tests/links/stream.c lib/client/ccm.h $(BUILD)/libccm.a
	@echo "  LD (musl)  $@"
	$(Q)$(STATIC_CC) $(STATIC_CFLAGS) -static -Wl,--gc-sections -o $@ $< $(BUILD)/libccm.a

# ccm-msgflow, the flow-control test client of tests/twonode, and static
# for the RDMA lab's guests (tests/vm/test_msgflow.sh).
$(BUILD)/dev/ccm-msgflow: tests/twonode/msgflow.c lib/client/ccm.h $(DEV_AR)
	@echo "  LD (dev)   $@"
	$(Q)$(DEV_CC) $(DEV_CFLAGS) -o $@ $< $(DEV_AR) $(DEV_LIBS)

$(BUILD)/ccm-msgflow: tests/twonode/msgflow.c lib/client/ccm.h $(STATIC_AR)
	@echo "  LD (musl)  $@"
	$(Q)$(STATIC_CC) $(STATIC_CFLAGS) -static -Wl,--gc-sections -o $@ $< $(STATIC_AR)

dev: $(BUILD)/dev/ccm-stream $(BUILD)/dev/ccm-msgflow
all: $(BUILD)/ccm-stream $(BUILD)/ccm-msgflow

bench: ccm-early $(BENCH_BIN)
	bench/run.sh

# --- the one-command jobs -----------------------------------------------------
test:
	scripts/deps.sh test
	$(MAKE) -j2 ccm-early $(CLIENT_PROGS) man $(BENCH_BIN) $(BUILD)/tests/keyless_rdma
	$(MAKE) -j2 dev fuzz-build $(BUILD)/sim/sim
	tests/run

demo:
	scripts/deps.sh build
	$(MAKE) -j2 ccm-early $(CLIENT_PROGS)
	scripts/demo.sh ./ccm-early

install: ccm-early $(CLIENT_PROGS) $(BUILD)/libccm.a man
	install -D -m 0755 ccm-early $(DESTDIR)$(PREFIX)/sbin/ccm-early
	install -D -m 0755 ccm-fmon $(DESTDIR)$(PREFIX)/sbin/ccm-fmon
	install -D -m 0755 ccm-nvmirror $(DESTDIR)$(PREFIX)/sbin/ccm-nvmirror
	install -D -m 0644 lib/client/ccm.h $(DESTDIR)$(PREFIX)/include/ccm.h
	install -D -m 0644 $(BUILD)/libccm.a $(DESTDIR)$(PREFIX)/lib/libccm.a
	mkdir -p $(DESTDIR)$(PREFIX)/lib/pkgconfig
	sed 's|@PREFIX@|$(PREFIX)|g' handoff/libccm.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/libccm.pc
	install -D -m 0755 handoff/ccm-state $(DESTDIR)$(PREFIX)/bin/ccm-state
	install -D -m 0755 handoff/ocf/ccm $(DESTDIR)$(PREFIX)/lib/ocf/resource.d/ccm/ccm
	for u in ccm-early ccm-fmon ccm-nvmirror ccm-early@ ccm-fmon@ ccm-nvmirror@; do \
		sed 's|/usr/sbin/|$(PREFIX)/sbin/|g' handoff/$$u.service | \
		install -D -m 0644 /dev/stdin $(DESTDIR)$(PREFIX)/lib/systemd/system/$$u.service; done
	# dracut looks only in its own directory, whatever PREFIX is.
	install -d $(DESTDIR)/usr/lib/dracut/modules.d/95ccm
	install -m 0755 dracut/95ccm/module-setup.sh dracut/95ccm/parse-ccm.sh \
		dracut/95ccm/ccm-connect.sh dracut/95ccm/ccm-lib.sh dracut/95ccm/ccm-generator.sh \
		$(DESTDIR)/usr/lib/dracut/modules.d/95ccm/
	install -m 0644 dracut/95ccm/ccm-early.service dracut/95ccm/ccm-early@.service \
		$(DESTDIR)/usr/lib/dracut/modules.d/95ccm/
	for m in $(MAN_PAGES); do n=$${m##*/}; \
		install -D -m 0644 $$m $(DESTDIR)$(PREFIX)/share/man/man$${n##*.}/$$n; done
	install -D -m 0644 doc/ccm-early.bash $(DESTDIR)$(BASH_COMPLETION_DIR)/ccm-early
	ln -sf ccm-early $(DESTDIR)$(BASH_COMPLETION_DIR)/ccm-fmon
	ln -sf ccm-early $(DESTDIR)$(BASH_COMPLETION_DIR)/ccm-nvmirror

# --- the Debian package: build/ccm-early_VERSION_ARCH.deb ------------------------
# `make install` into an empty staging tree, then scripts/mkdeb.sh (man pages
# gzipped, copyright, changelog, DEBIAN/control) and dpkg-deb.  The version
# is the one ccm-early --version prints; tests/cli/test_deb.sh checks the
# package with lintian and installs it with dpkg --root.
DEB_STAGE := $(BUILD)/deb/root

deb: ccm-early $(CLIENT_PROGS) $(BUILD)/libccm.a man
	$(Q)rm -rf $(DEB_STAGE) $(BUILD)/ccm-early_*.deb
	$(Q)$(MAKE) -s install DESTDIR=$(abspath $(DEB_STAGE)) PREFIX=/usr \
		BASH_COMPLETION_DIR=/usr/share/bash-completion/completions >/dev/null
	$(Q)scripts/mkdeb.sh $(DEB_STAGE) $(BUILD)

clean:
	rm -rf $(BUILD)/static $(BUILD)/dev $(BUILD)/fuzz $(BUILD)/sim $(BUILD)/bench $(BUILD)/tests $(BUILD)/libccm.a \
		$(BUILD)/man $(BUILD)/deb $(BUILD)/ccm-early_*.deb \
		ccm-early ccm-fmon ccm-nvmirror *.unstripped

# The header dependencies -MMD wrote.
-include $(shell find $(BUILD)/dev $(BUILD)/static $(BUILD)/fuzz $(BUILD)/sim $(BUILD)/bench -name '*.d' -type f 2>/dev/null)

.PHONY: deps-build all dev fuzz fuzz-build bench test demo install clean sim man deb
