# portvakt build. `make` builds build/portvakt; `make test` sets up the
# machine (scripts/setup.sh), builds and runs every test; `make run` starts
# the bundled example with its demo upstream services.

CC      ?= cc
LLHTTP  ?= /usr/share/llhttp
LLHTTP_INC ?= /usr/share/include/llhttp
BUILD   ?= build
PY      ?= /usr/bin/python3

WARN    := -Wall -Wextra -Wshadow -Wno-unused-parameter
CFLAGS  ?= -O2 -g
# SAN: sanitizer flags for a separate build (see test-asan)
SAN     ?=
override CFLAGS += $(SAN) -std=gnu11 $(WARN) -pthread -D_GNU_SOURCE -I$(LLHTTP_INC) -Isrc
override LDFLAGS += $(SAN)
# Hardening, as Debian's dpkg-buildflags gives its packages: libc calls
# checked where the sizes are known, relocations read-only and bound at
# start (no cost per request: bench/instructions.py counts the same). Not
# with a sanitizer, whose own checks the fortified calls would bypass.
ifeq ($(SAN),)
override CFLAGS += -D_FORTIFY_SOURCE=2
override LDFLAGS += -Wl,-z,relro,-z,now
endif
# METRICS=off: a build whose workers keep no request metrics (every bump
# skipped), the baseline of bench/instructions.py's cost of the metrics
ifeq ($(METRICS),off)
override CFLAGS += -DPV_NO_METRICS
endif
# WERROR=1 turns warnings into errors (CI)
ifdef WERROR
override CFLAGS += -Werror
endif
LDLIBS  += -pthread -lpcre2-8 -lssl -lcrypto -lcrypt -lhiredis -lnghttp2 -lz -lbrotlienc -lbrotlidec -lsystemd -lm -ljansson -lcares

SRCS    := $(sort $(wildcard src/*/*.c))
OBJS    := $(SRCS:%.c=$(BUILD)/%.o)
LLOBJS  := $(BUILD)/llhttp/api.o $(BUILD)/llhttp/http.o $(BUILD)/llhttp/llhttp.o
MAINOBJ := $(BUILD)/src/main.o
UNIT_SRCS := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: all run test unit integration setup clean check test-asan fuzz fuzz-build lint bench fault \
	nginx-suite nginx-suite-record man install uninstall deb

ASAN_FLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined

all: $(BUILD)/portvakt

$(BUILD)/portvakt: $(MAINOBJ) $(OBJS) $(LLOBJS)
	$(CC) $(CFLAGS) -o $@ $^ $(LDFLAGS) $(LDLIBS)

$(BUILD)/src/%.o: src/%.c $(wildcard src/*/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -c -o $@ $<

# the dashboard page is built into dashboard.o (.incbin)
$(BUILD)/src/proxy/dashboard.o: src/proxy/dashboard.html

$(BUILD)/llhttp/%.o: $(LLHTTP)/%.c
	@mkdir -p $(dir $@)
	$(CC) $(filter-out $(WARN),$(CFLAGS)) -w -c -o $@ $<

# Unit tests are one cmocka binary per file; they may #include a .c file to
# reach its statics, so they link the library objects except that one.
# Fixtures shared by several tests are headers in tests/unit.
$(BUILD)/tests/test_%: tests/unit/test_%.c $(OBJS) $(LLOBJS) $(wildcard src/*/*.h) $(wildcard tests/unit/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit -o $@ $< \
	  $(filter-out $(shell grep -ho '#include "../../src/[a-z]*/[a-z_]*\.c"' $< | sed 's|#include "../../\(.*\)\.c"|$(BUILD)/\1.o|'),$(OBJS)) \
	  $(LLOBJS) $(LDFLAGS) $(LDLIBS) -lcmocka

setup:
	@sh scripts/setup.sh

# A test build with the allocation-failure switch (src/core/fault.h), in
# build/fault/; the integration suite drives it. build/portvakt has none.
fault:
	@$(MAKE) --no-print-directory BUILD=$(BUILD)/fault CFLAGS="-O2 -g -DPV_FAULT_INJECTION" all

unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; $$t; done

integration: $(BUILD)/portvakt fault
	$(PY) -m pytest -q -p no:cacheprovider tests/integration

# make test: unit and integration suites, then a short run of every fuzz
# target (FUZZ_SMOKE seconds each)
FUZZ_SMOKE ?= 20
test: setup
	@$(MAKE) --no-print-directory all unit
	@$(MAKE) --no-print-directory integration
	@$(MAKE) --no-print-directory fuzz FUZZ_TIME=$(FUZZ_SMOKE)

# The unit and integration suites on an ASan+UBSan build; any report fails
# the run (the integration harness checks the gateway's stderr). The plain
# build comes first: a few tests run build/portvakt itself (install, doctor).
test-asan: setup
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory BUILD=$(BUILD)/asan CFLAGS="-O1 -g" SAN="$(ASAN_FLAGS)" \
	  $(BUILD)/asan/portvakt unit
	@$(MAKE) --no-print-directory fault
	PORTVAKT=$(BUILD)/asan/portvakt ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 $(PY) -m pytest -q -p no:cacheprovider tests/integration

# libFuzzer targets (fuzz/fuzz_NAME.c, seeds in fuzz/corpus/NAME, optional
# fuzz/NAME.dict), built with clang against every object but main; a
# target that #includes a .c file leaves that object out. `make fuzz` runs
# each for FUZZ_TIME seconds; new inputs go to build/, not the tree.
FUZZ_TIME ?= 60
FUZZ_DIR  := $(BUILD)/fuzz
FUZZ_SAN  := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_SRCS := $(sort $(wildcard fuzz/fuzz_*.c))
FUZZ_BINS := $(FUZZ_SRCS:fuzz/%.c=$(FUZZ_DIR)/bin/%)
FUZZ_OBJS := $(SRCS:%.c=$(FUZZ_DIR)/%.o)

fuzz-build: setup
	@$(MAKE) --no-print-directory CC=clang BUILD=$(FUZZ_DIR) CFLAGS="-g -O1" \
	  SAN="$(FUZZ_SAN) -fsanitize=fuzzer-no-link" $(FUZZ_DIR)/objs.stamp
	@$(MAKE) --no-print-directory $(FUZZ_BINS)

$(BUILD)/objs.stamp: $(OBJS) $(LLOBJS)
	@touch $@

$(FUZZ_DIR)/bin/%: fuzz/%.c $(wildcard src/*/*.h) $(FUZZ_DIR)/objs.stamp
	@mkdir -p $(dir $@)
	clang -g -O1 $(FUZZ_SAN) -fsanitize=fuzzer -std=gnu11 -D_GNU_SOURCE -I$(LLHTTP_INC) -Isrc -o $@ $< \
	  $(filter-out $(shell grep -ho '#include "../src/[a-z]*/[a-z0-9_]*\.c"' $< | sed 's|#include "../\(.*\)\.c"|$(FUZZ_DIR)/\1.o|'),$(FUZZ_OBJS)) \
	  $(FUZZ_DIR)/llhttp/*.o $(LDLIBS)

fuzz: fuzz-build
	@set -e; for b in $(FUZZ_BINS); do n=$$(basename $$b | sed 's/^fuzz_//'); \
	  mkdir -p $(FUZZ_DIR)/corpus-$$n; d=""; if [ -f fuzz/$$n.dict ]; then d="-dict=fuzz/$$n.dict"; fi; \
	  echo "== fuzz_$$n ($(FUZZ_TIME) s)"; \
	  if ! $$b -max_total_time=$(FUZZ_TIME) -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 $$d \
	      -artifact_prefix=$(FUZZ_DIR)/crash-$$n- $(FUZZ_DIR)/corpus-$$n fuzz/corpus/$$n \
	      > $(FUZZ_DIR)/fuzz_$$n.log 2>&1; then tail -60 $(FUZZ_DIR)/fuzz_$$n.log; exit 1; fi; \
	  grep -E '^stat::number_of_executed_units' $(FUZZ_DIR)/fuzz_$$n.log; done

# Static analysis of src/: the include order between directories
# (scripts/check-layers.sh), cppcheck and clang-tidy (config in
# .clang-tidy); any finding fails. One file per clang-tidy run: its
# analyser carries state from one file to the next and then reports
# va_list false positives.
lint: setup
	sh scripts/check-layers.sh
	cppcheck -j $$(nproc) --error-exitcode=1 --enable=warning,performance,portability --inline-suppr --quiet \
	  --std=c11 -D_GNU_SOURCE -Isrc -I$(LLHTTP_INC) src/
	@ls src/*/*.c src/main.c | xargs -P $$(nproc) -n 1 sh -c \
	  'clang-tidy -quiet "$$@" -- -std=gnu11 -D_GNU_SOURCE -Isrc -I$(LLHTTP_INC) 2>/dev/null' clang-tidy

run: setup
	@$(MAKE) --no-print-directory all
	@$(PY) examples/run.py

# NGINX's own test suite (../shared/corpora/nginx-tests, unmodified) against
# build/portvakt and NGINX, per file (tests/nginx-suite/run.py). It fails
# when a file passes fewer tests on portvakt than tests/nginx-suite/baseline
# records, or when the harness itself fails. nginx-suite-record writes
# today's counts to the baseline and tests/nginx-suite/results.md.
NGINX_SUITE := $(PY) tests/nginx-suite/run.py
nginx-suite: setup
	@$(MAKE) --no-print-directory all
	@$(NGINX_SUITE) --check tests/nginx-suite/baseline

nginx-suite-record: setup
	@$(MAKE) --no-print-directory all
	@$(NGINX_SUITE) --record tests/nginx-suite/baseline --write tests/nginx-suite/results.md

# portvakt beside NGINX and HAProxy (bench/run.py; not part of `make test`).
# BENCH_QUICK=1: one short round; BENCH_ONLY=portvakt,nginx: some contestants.
bench: setup
	@$(MAKE) --no-print-directory all
	@$(PY) bench/run.py

# Installation, the GNU way: PREFIX for the program and its manuals,
# DESTDIR (empty, or a staging root) in front of every path written.
# The configuration goes to SYSCONFDIR/portvakt (/etc/portvakt, the path
# the binary reads by default; another SYSCONFDIR is compiled in); an
# existing portvakt.conf, mime.types or fastcgi_params is left as it is.
PREFIX     ?= /usr/local
SBINDIR    ?= $(PREFIX)/sbin
MANDIR     ?= $(PREFIX)/share/man
DOCDIR     ?= $(PREFIX)/share/doc/portvakt
SYSCONFDIR ?= /etc
MIME_TYPES ?= conf/mime.types
INSTALL    ?= install
VERSION    := $(shell sed -n 's/^\#define PV_VERSION "\(.*\)"/\1/p' src/core/common.h)
ifneq ($(SYSCONFDIR),/etc)
override CFLAGS += -DPV_DEFAULT_CONF='"$(SYSCONFDIR)/portvakt/portvakt.conf"'
endif

# portvakt(8) and portvakt.conf(5), made from the README's command line
# and directive reference (scripts/manpage.py)
MANPAGES := $(BUILD)/man/portvakt.8 $(BUILD)/man/portvakt.conf.5
man: $(MANPAGES)
$(BUILD)/man/stamp: README.md scripts/manpage.py src/core/common.h
	@mkdir -p $(dir $@)
	$(PY) scripts/manpage.py README.md $(BUILD)/man $(VERSION)
	@touch $@
$(MANPAGES): $(BUILD)/man/stamp

CONFDIR := $(DESTDIR)$(SYSCONFDIR)/portvakt
install: all man
	$(INSTALL) -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(MANDIR)/man5 \
	  $(DESTDIR)$(DOCDIR)/examples $(CONFDIR)/conf.d
	$(INSTALL) -m 755 $(BUILD)/portvakt $(DESTDIR)$(SBINDIR)/portvakt
	$(INSTALL) -m 644 $(BUILD)/man/portvakt.8 $(DESTDIR)$(MANDIR)/man8/portvakt.8
	$(INSTALL) -m 644 $(BUILD)/man/portvakt.conf.5 $(DESTDIR)$(MANDIR)/man5/portvakt.conf.5
	test -e $(CONFDIR)/portvakt.conf || $(INSTALL) -m 644 deploy/portvakt.conf $(CONFDIR)/portvakt.conf
	test -e $(CONFDIR)/mime.types || $(INSTALL) -m 644 $(MIME_TYPES) $(CONFDIR)/mime.types
	test -e $(CONFDIR)/fastcgi_params || $(INSTALL) -m 644 conf/fastcgi_params $(CONFDIR)/fastcgi_params
	sed -e 's/127.0.0.1:PORT_A/10.10.0.5:8080/' -e 's/127.0.0.1:PORT_B/10.10.0.6:8080/' \
	  -e 's/127.0.0.1:PORT_GW/80/' examples/gateway.conf >$(BUILD)/gateway.conf.example
	$(INSTALL) -m 644 $(BUILD)/gateway.conf.example $(DESTDIR)$(DOCDIR)/examples/gateway.conf

# what install wrote, but the configuration in SYSCONFDIR/portvakt
uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/portvakt $(DESTDIR)$(MANDIR)/man8/portvakt.8 \
	  $(DESTDIR)$(MANDIR)/man5/portvakt.conf.5
	rm -rf $(DESTDIR)$(DOCDIR)

# A Debian package of the install tree (deploy/debian/ holds its control
# files, scripts/mkdeb.sh builds it with dpkg-deb): build/portvakt_*.deb.
deb: all man
	sh scripts/mkdeb.sh $(BUILD) $(VERSION)

clean:
	rm -rf $(BUILD)

-include $(OBJS:.o=.d)
