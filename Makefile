# cgprof build. `make` builds build/libcgprof.so, build/libcgprof-heap.so
# (the same plus the heap summary's malloc interposers) and build/cgprof;
# `make check` installs missing Debian packages, builds and runs every test;
# `make demo` profiles a bundled program and prints a report.
# Quiet by default; `make V=1` shows full commands.

CC      ?= gcc
PREFIX  ?= /usr/local
DESTDIR ?=
BUILD   := build

ifeq ($(V),1)
Q :=
else
Q := @
endif

WARN := -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes \
        -Wmissing-prototypes -Wold-style-definition -Wformat=2 -Wundef \
        -Wcast-qual -Wwrite-strings -Wpointer-arith -Wvla \
        -Wimplicit-fallthrough -Werror=implicit-function-declaration
ifeq ($(CI),true)
WARN += -Werror
endif

BASE_CFLAGS := -std=c11 -D_GNU_SOURCE -fPIC -fvisibility=hidden \
               -fno-omit-frame-pointer -g $(WARN)
OPT        ?= -O2
CFLAGS_REL  := $(BASE_CFLAGS) $(OPT) $(CFLAGS)
SAN         := -fsanitize=address,undefined -fno-sanitize-recover=all
CFLAGS_TEST := $(BASE_CFLAGS) -O1 $(SAN) -DCGPROF_UNIT_TEST $(CFLAGS)

# Static, hidden copies of the dependencies go into libcgprof.so so a host
# process sees nothing but libc from us (DESIGN.md "Never break the host").
# Debian's libunwind and jansson .a files cannot go into a shared object:
# scripts/build-static-deps rebuilds the same Debian source packages with
# -fPIC into $(BUILD)/deps.
DEPS_DIR := $(BUILD)/deps
DEPS_A := $(DEPS_DIR)/lib/libunwind-x86_64.a $(DEPS_DIR)/lib/libjansson.a
LIB_STATIC := -Wl,--exclude-libs,ALL $(DEPS_A) $(DEPS_DIR)/lib/libunwind.a -Wl,-Bstatic \
              -llzma -lmbedtls -lmbedx509 -lmbedcrypto -lz -Wl,-Bdynamic
LIB_LDFLAGS := -shared -Wl,-z,defs -Wl,-z,now -Wl,--version-script=preload/exports.map \
               -Wl,--wrap=sigprocmask
TEST_LIBS := -lcheck -lsubunit -lunwind-generic -lunwind -ljansson -lmbedtls \
             -lmbedx509 -lmbedcrypto -lz -lm -lrt -ldl -pthread

# Sources by folder: each folder is one stage of the data's trip.
src = $(sort $(wildcard $(1)/*.c))
LIB_MODULES := common config profile sampler uploader preload
CLI_MODULES := common config profile uploader report cli
LIB_SRC := $(foreach m,$(LIB_MODULES),$(call src,$(m)))
CLI_SRC := $(foreach m,$(CLI_MODULES),$(call src,$(m)))
ALL_SRC := $(sort $(LIB_SRC) $(CLI_SRC))
# libcgprof-heap.so is libcgprof.so plus the malloc family interposers of
# the heap summary; libcgprof.so leaves malloc alone, so programs that do
# not ask for the heap summary pay nothing for it.
HEAP_SRC := preload/heap.c
CORE_SRC := $(filter-out $(HEAP_SRC),$(LIB_SRC))

rel = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))
san = $(patsubst %.c,$(BUILD)/asan/%.o,$(1))

# Unit tests: test/unit/<module>/test_<file>.c, one binary each, linked
# with its module and the modules it may depend on (asan+ubsan objects).
TDEPS_common   := common
TDEPS_config   := config common
TDEPS_profile  := profile common
TDEPS_sampler  := sampler profile common
TDEPS_uploader := uploader profile config common
TDEPS_report   := report profile common
TDEPS_preload  := preload sampler uploader profile config common
TDEPS_cli      := cli report uploader profile config common
UNIT_SRC  := $(sort $(wildcard test/unit/*/test_*.c))
UNIT_BIN  := $(patsubst test/unit/%.c,$(BUILD)/test/unit/%,$(UNIT_SRC))
HELPERS   := $(BUILD)/asan/test/helpers.o

# Workloads: small programs with known behaviour, built like user code
# (-O2, no frame pointers) for the integration tests and the demo.
# C++ workloads (*.cc) are built with $(CXX); WORKLOAD_LIBS_<name> adds
# libraries for one workload.
WORKLOAD_SRC := $(sort $(wildcard test/workloads/*.c))
WORKLOAD_CXX_SRC := $(sort $(wildcard test/workloads/*.cc))
WORKLOAD_BIN := $(patsubst test/workloads/%.c,$(BUILD)/workloads/%,$(WORKLOAD_SRC)) \
                $(patsubst test/workloads/%.cc,$(BUILD)/workloads/%,$(WORKLOAD_CXX_SRC))
WORKLOAD_CFLAGS := -O2 -g -fomit-frame-pointer -pthread -Wall
WORKLOAD_LIBS_rec_compress := -Wl,-Bstatic -lz -Wl,-Bdynamic

.PHONY: all check test unit integration deps demo clean install uninstall bench lint
all: $(BUILD)/libcgprof.so $(BUILD)/libcgprof-heap.so $(BUILD)/cgprof

deps:
	$(Q)scripts/install-deps

# One run of the script makes both archives (a grouped target: with -j a
# plain rule would run it twice at once in the same directory).
$(DEPS_A) &:
	$(Q)scripts/build-static-deps $(DEPS_DIR)

$(BUILD)/libcgprof.so: $(call rel,$(CORE_SRC)) preload/exports.map $(DEPS_A)
	@echo "  LINK    $@"
	$(Q)$(CC) $(CFLAGS_REL) $(LIB_LDFLAGS) -Wl,-soname,libcgprof.so -o $@ \
	    $(call rel,$(CORE_SRC)) $(LIB_STATIC) -ldl -pthread

$(BUILD)/libcgprof-heap.so: $(call rel,$(LIB_SRC)) preload/exports.map $(DEPS_A)
	@echo "  LINK    $@"
	$(Q)$(CC) $(CFLAGS_REL) $(LIB_LDFLAGS) -Wl,-soname,libcgprof-heap.so -o $@ \
	    $(call rel,$(LIB_SRC)) $(LIB_STATIC) -ldl -pthread

$(BUILD)/cgprof: $(call rel,$(CLI_SRC))
	@echo "  LINK    $@"
	$(Q)$(CC) $(CFLAGS_REL) -o $@ $^ -lcurl -ljansson -lmbedtls -lmbedx509 -lmbedcrypto -lz -lm -pthread

$(BUILD)/obj/%.o: %.c $(BUILD)/.flags
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(CFLAGS_REL) -MMD -MP -c -o $@ $<

$(BUILD)/asan/%.o: %.c $(BUILD)/.flags
	@mkdir -p $(dir $@)
	@echo "  CC san  $<"
	$(Q)$(CC) $(CFLAGS_TEST) -MMD -MP -c -o $@ $<

# report/html.c embeds the HTML report's template with .incbin.
$(BUILD)/obj/report/html.o $(BUILD)/asan/report/html.o: report/html_template.html

# Rebuild everything when the flags change.
$(BUILD)/.flags: FORCE
	@mkdir -p $(BUILD)
	@echo '$(CC) $(CFLAGS_REL) $(CFLAGS_TEST) $(LIB_STATIC)' | cmp -s - $@ || \
	  echo '$(CC) $(CFLAGS_REL) $(CFLAGS_TEST) $(LIB_STATIC)' > $@
FORCE:

.SECONDEXPANSION:
$(BUILD)/test/unit/%: test/unit/%.c $(HELPERS) \
    $$(call san,$$(foreach m,$$(TDEPS_$$(firstword $$(subst /, ,$$*))),$$(call src,$$(m))))
	@mkdir -p $(dir $@)
	@echo "  TEST    $@"
	$(Q)$(CC) $(CFLAGS_TEST) -Itest -MMD -MP -o $@ $(filter %.c %.o,$^) $(TEST_LIBS)

$(BUILD)/workloads/%: test/workloads/%.c
	@mkdir -p $(dir $@)
	@echo "  CC wl   $<"
	$(Q)$(CC) $(WORKLOAD_CFLAGS) -o $@ $< $(WORKLOAD_LIBS_$*) -ldl -lm

$(BUILD)/workloads/%: test/workloads/%.cc
	@mkdir -p $(dir $@)
	@echo "  CXX wl  $<"
	$(Q)$(CXX) $(WORKLOAD_CFLAGS) -o $@ $< $(WORKLOAD_LIBS_$*) -ldl -lm

# Fuzzing with clang's libFuzzer, kept out of `make check`: `make fuzz`
# builds test/fuzz/fuzz_http_parse.c with ASan+UBSan and runs it for
# FUZZ_SECONDS on a working corpus in $(BUILD)/fuzz (seeded from the
# committed test/fuzz/corpus/http, which it never modifies).
FUZZ_SECONDS ?= 60
FUZZ_CC      ?= clang
FUZZ_CFLAGS  := -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
                -fno-sanitize-recover=all -DCGPROF_UNIT_TEST
FUZZ_SRC     := uploader/http.c uploader/url.c uploader/tls.c $(call src,common)
.PHONY: fuzz
$(BUILD)/fuzz/fuzz_http_parse: test/fuzz/fuzz_http_parse.c $(FUZZ_SRC) uploader/uploader_int.h
	@mkdir -p $(dir $@)
	@echo "  FUZZ    $@"
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $(filter %.c,$^) -lmbedtls -lmbedx509 -lmbedcrypto -lm -pthread

fuzz: $(BUILD)/fuzz/fuzz_http_parse
	$(Q)mkdir -p $(BUILD)/fuzz/corpus-http
	$(Q)$(BUILD)/fuzz/fuzz_http_parse -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	    -dict=test/fuzz/http.dict -max_len=70000 $(BUILD)/fuzz/corpus-http test/fuzz/corpus/http

# The README's test command: install what is missing, build, run all tests.
check: deps
	$(Q)$(MAKE) --no-print-directory all tests
	$(Q)scripts/run-tests

tests: $(UNIT_BIN) $(WORKLOAD_BIN) all $(BUILD)/lambda-layer.zip

unit: $(UNIT_BIN)
	$(Q)scripts/run-tests --unit-only

demo: deps
	$(Q)$(MAKE) --no-print-directory all $(BUILD)/workloads/demo
	$(Q)scripts/demo

# `make bench` also installs gperftools and perf to compare against;
# BENCH_ARGS=--quick gives a rough smoke run.
bench:
	$(Q)CGPROF_BENCH=1 scripts/install-deps
	$(Q)$(MAKE) --no-print-directory all $(WORKLOAD_BIN)
	$(Q)BUILD=$(BUILD) scripts/bench $(BENCH_ARGS)

# Install layout (GNU names; DESTDIR for staging). cgprof-exec and
# cgprof-systemd find the library at ../lib from their own directory, else
# at the LIBDIR recorded here.
BINDIR     ?= $(PREFIX)/bin
LIBDIR     ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
DOCDIR     ?= $(PREFIX)/share/doc/cgprof
WRAPPERS   := cgprof-exec cgprof-systemd

install: all
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(DOCDIR)
	install -m 0644 $(BUILD)/libcgprof.so $(DESTDIR)$(LIBDIR)/libcgprof.so
	install -m 0644 $(BUILD)/libcgprof-heap.so $(DESTDIR)$(LIBDIR)/libcgprof-heap.so
	install -m 0755 $(BUILD)/cgprof $(DESTDIR)$(BINDIR)/cgprof
	for w in $(WRAPPERS); do \
	    sed 's|^\([ ]*\)installed_lib=$$|\1installed_lib=$(LIBDIR)/libcgprof.so|' scripts/$$w \
	        >$(DESTDIR)$(BINDIR)/$$w.tmp && chmod 0755 $(DESTDIR)$(BINDIR)/$$w.tmp && \
	    mv -f $(DESTDIR)$(BINDIR)/$$w.tmp $(DESTDIR)$(BINDIR)/$$w || exit 1; \
	done
	install -m 0644 include/cgprof.h $(DESTDIR)$(INCLUDEDIR)/cgprof.h
	install -m 0644 README.md $(DESTDIR)$(DOCDIR)/README.md

uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/libcgprof.so $(DESTDIR)$(LIBDIR)/libcgprof-heap.so \
	      $(DESTDIR)$(BINDIR)/cgprof \
	      $(addprefix $(DESTDIR)$(BINDIR)/,$(WRAPPERS)) $(DESTDIR)$(INCLUDEDIR)/cgprof.h
	rm -rf $(DESTDIR)$(DOCDIR)

# AWS Lambda layer: /opt/cgprof-lambda-exec (for AWS_LAMBDA_EXEC_WRAPPER)
# and /opt/lib/libcgprof.so (and libcgprof-heap.so) once unpacked by Lambda.
.PHONY: lambda-layer deb
lambda-layer: $(BUILD)/lambda-layer.zip
$(BUILD)/lambda-layer.zip: $(BUILD)/libcgprof.so $(BUILD)/libcgprof-heap.so scripts/cgprof-lambda-exec
	@echo "  ZIP     $@"
	$(Q)command -v zip >/dev/null || { echo "zip is missing: apt-get install zip" >&2; exit 1; }
	$(Q)rm -rf $(BUILD)/lambda-layer $@
	$(Q)install -d $(BUILD)/lambda-layer/lib
	$(Q)install -m 0755 scripts/cgprof-lambda-exec $(BUILD)/lambda-layer/cgprof-lambda-exec
	$(Q)install -m 0755 $(BUILD)/libcgprof.so $(BUILD)/lambda-layer/lib/libcgprof.so
	$(Q)install -m 0755 $(BUILD)/libcgprof-heap.so $(BUILD)/lambda-layer/lib/libcgprof-heap.so
	$(Q)cd $(BUILD)/lambda-layer && zip -q -X -r ../lambda-layer.zip cgprof-lambda-exec lib

# A Debian package of the /usr install: $(BUILD)/cgprof_VERSION_ARCH.deb.
deb: all
	$(Q)BUILD=$(BUILD) scripts/make-deb

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
