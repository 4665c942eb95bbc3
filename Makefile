# Wharf: the two commands.
#   make run    install what is missing, build, start wharfd in the foreground
#   make test   install what is missing, build with ASan+UBSan, run every test
#
# Both install Debian 12 packages with apt-get when they are missing (as root,
# or through sudo). Other targets: build, deps, fuzz, bench, format, clean.

DEPS_BUILD := meson ninja-build pkg-config gcc libc6-dev libevent-dev libssl-dev \
              libsqlite3-dev libjansson-dev libcrypt-dev zlib1g-dev openssl libunbound-dev \
              libunistring-dev libseccomp-dev
DEPS_TEST  := $(DEPS_BUILD) libcmocka-dev python3 python3-pytest swaks curl \
              clang libclang-rt-14-dev nftables python3-aiosmtpd python3-dnslib isync \
              fetchmail offlineimap3 libnet-ssleay-perl libio-socket-ssl-perl
BUILD      ?= build
BUILD_SAN  ?= build-san
PYTHON     := /usr/bin/python3
SUDO       := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
RUN_ARGS   ?=

.PHONY: run test build build-san deps deps-test unit integration fuzz fuzz-smoke bench format clean

run: deps build
	$(BUILD)/src/supervisor/wharfd -f $(RUN_ARGS)

test: deps-test build-san unit integration fuzz-smoke

deps:
	@sh tools/install-deps.sh $(DEPS_BUILD)

deps-test:
	@sh tools/install-deps.sh $(DEPS_TEST)

$(BUILD)/build.ninja:
	meson setup $(BUILD) --buildtype=debugoptimized

$(BUILD_SAN)/build.ninja:
	meson setup $(BUILD_SAN) --buildtype=debug -Db_sanitize=address,undefined -Db_lundef=false

build: $(BUILD)/build.ninja
	ninja -C $(BUILD)

build-san: $(BUILD_SAN)/build.ninja
	ninja -C $(BUILD_SAN)

unit: build-san
	meson test -C $(BUILD_SAN) --print-errorlogs

integration: build-san
	WHARF_BUILD=$(abspath $(BUILD_SAN)) $(PYTHON) -m pytest -q -p no:cacheprovider tests/integration

build-fuzz/build.ninja:
	CC=clang meson setup build-fuzz -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false

# libFuzzer builds of every fuzz target (clang); run one with
#   build-fuzz/src/smtp/fuzz_smtp_command -max_total_time=300 tests/fuzz/corpus/smtp_command
fuzz: build-fuzz/build.ninja
	ninja -C build-fuzz

# Part of `make test`: every target builds under clang and runs a fixed,
# seeded number of mutations from its corpus (deterministic, so CI is too).
# New inputs go to build-fuzz/NAME.new, never into the committed corpus.
fuzz-smoke: fuzz
	@for f in build-fuzz/src/*/fuzz_*; do \
	    [ -f "$$f" ] && [ -x "$$f" ] || continue; \
	    name=$$(basename $$f); corpus=tests/fuzz/corpus/$${name#fuzz_}; \
	    [ -d "$$corpus" ] || corpus=; \
	    echo "fuzz-smoke: $$name"; \
	    new=build-fuzz/$$name.new; rm -rf $$new; mkdir -p $$new; \
	    UBSAN_OPTIONS=halt_on_error=1 $$f -seed=1 -runs=20000 -max_len=65536 $$new $$corpus \
	        >build-fuzz/$$name.log 2>&1 || { tail -30 build-fuzz/$$name.log; exit 1; }; \
	done

bench:
	@echo "see bench/README.md: each bench/NAME/run script compares Wharf with a peer"

format:
	clang-format -i $$(git ls-files 'src/*.c' 'src/*.h' 'tests/*.c')

clean:
	rm -rf $(BUILD) $(BUILD_SAN) build-fuzz
