# Wharf: the two commands.
#   make run    install what is missing, build, start wharfd in the foreground
#   make test   install what is missing, build with ASan+UBSan, run every test
#
# Both install Debian 12 packages with apt-get when they are missing (as root,
# or through sudo). Other targets: build, deps, fuzz, bench, format, clean,
# install (DESTDIR, PREFIX, SENDMAIL_LINKS=1) and deb (see doc/install.md).

DEPS_BUILD := meson ninja-build pkg-config gcc libc6-dev libevent-dev libssl-dev \
              libsqlite3-dev libjansson-dev libcrypt-dev zlib1g-dev openssl libunbound-dev \
              libunistring-dev publicsuffix libseccomp-dev libldap-dev \
              libnghttp2-dev libbrotli-dev libzstd-dev libwslay-dev
# `make deb` and its test: Debian's packaging tools.
DEPS_DEB   := debhelper dpkg-dev fakeroot lintian
DEPS_TEST  := $(DEPS_BUILD) libcmocka-dev python3 python3-pytest swaks curl zstd \
              clang clang-format libclang-rt-14-dev nftables python3-aiosmtpd python3-dnslib isync \
              fetchmail offlineimap3 libnet-ssleay-perl libio-socket-ssl-perl \
              dovecot-imapd mutt $(DEPS_DEB) systemd iproute2 adduser \
              python3-dkim python3-spf opendkim opendkim-tools rspamd \
              nsd ldnsutils slapd ldap-utils python3-pytest-xdist chromium ccache sinntp slrn
# ccache (in DEPS_TEST; meson uses it when it is there): `make test` compiles
# the tree three times (build-san, build-fuzz, build-install in test_install),
# and a fresh clone in another folder (CI's) hits the cache of the last run
# only with paths taken relative to the clone and the folder left out of the
# key (the objects' debug info then names the folder of the first build).
export CCACHE_BASEDIR ?= $(CURDIR)
export CCACHE_NOHASHDIR ?= 1
BUILD      ?= build
BUILD_SAN  ?= build-san
# make install / make deb: an optimized build for PREFIX, with Debian's
# hardening flags when dpkg-buildflags is there (make deb reuses it).
BUILD_INSTALL ?= build-install
PREFIX     ?= /usr
DESTDIR    ?=
SENDMAIL_LINKS ?= 0
DEB_OUT    ?= build-deb
PYTHON     := /usr/bin/python3
SUDO       := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
RUN_ARGS   ?=

.PHONY: run test build build-san deps deps-test deps-deb webmail-deps unit integration fuzz fuzz-smoke bench \
        format clean install deb

run: deps build webmail-deps
	$(BUILD)/src/supervisor/wharfd -f $(RUN_ARGS)

# The webmail's one npm dependency (DOMPurify, pinned in its package-lock.json),
# which wharfd serves from src/http/webmail/node_modules when run from the tree
# (and meson installs as vendor/purify.js): Debian's npm, unless one is there.
webmail-deps:
	@command -v npm >/dev/null || sh tools/install-deps.sh nodejs npm
	cd src/http/webmail && npm ci --no-audit --no-fund

test: deps-test build-san unit integration fuzz-smoke

deps:
	@sh tools/install-deps.sh $(DEPS_BUILD)

# INN 2.7 (inn2), the news peer of test_nntp_feed.py and bench/nntp, comes
# from tools/install-inn2.sh (deps-test): its post-installation script needs
# care on a fresh machine (a domain in inn.conf, Postfix's main.cf).
# The independent JMAP client of tests/jmap-client (npm jmap-jam under node:test):
# Debian's nodejs and npm, unless a node with its own npm is there already
# (NodeSource's nodejs bundles npm and conflicts with Debian's npm package).
deps-test: webmail-deps
	@sh tools/install-deps.sh $(DEPS_TEST)
	@sh tools/install-inn2.sh
	@command -v npm >/dev/null || sh tools/install-deps.sh nodejs npm
	cd tests/jmap-client && npm ci --no-audit --no-fund
	cd tests/webmail && npm ci --no-audit --no-fund

deps-deb:
	@sh tools/install-deps.sh $(DEPS_BUILD) $(DEPS_DEB)

$(BUILD)/build.ninja:
	meson setup $(BUILD) --buildtype=debugoptimized

$(BUILD_SAN)/build.ninja:
	meson setup $(BUILD_SAN) --buildtype=debug -Db_sanitize=address,undefined -Db_lundef=false

build: $(BUILD)/build.ninja
	ninja -C $(BUILD)

build-san: $(BUILD_SAN)/build.ninja
	ninja -C $(BUILD_SAN)

$(BUILD_INSTALL)/build.ninja:
	if command -v dpkg-buildflags >/dev/null; then eval "$$(DEB_BUILD_MAINT_OPTIONS=hardening=+all \
	    dpkg-buildflags --export=sh)"; fi; \
	meson setup $(BUILD_INSTALL) --buildtype=plain -Doptimization=2 -Dwerror=false \
	    -Dtests=disabled --prefix=$(PREFIX)

# Builds only what is installed (not the tests), then installs it; an
# existing /etc/wharf/wharf.conf is kept (dist/install-config.sh).
install: deps webmail-deps $(BUILD_INSTALL)/build.ninja
	meson configure $(BUILD_INSTALL) -Dprefix=$(PREFIX) \
	    -Dsendmail_links=$(if $(filter 1 yes true,$(SENDMAIL_LINKS)),true,false)
	ninja -C $(BUILD_INSTALL) $(INSTALL_TARGETS)
	DESTDIR=$(if $(DESTDIR),$(abspath $(DESTDIR))) meson install -C $(BUILD_INSTALL) --no-rebuild \
	    --quiet

INSTALL_TARGETS = src/supervisor/wharfd src/cli/wharf src/cli/wharf-admin dist/wharf.conf

# wharf_VERSION_ARCH.deb and wharf-sendmail_VERSION_all.deb in $(DEB_OUT)/,
# built by dpkg-buildpackage from a copy of the tree (its outputs go to the
# parent folder). It reuses $(BUILD_INSTALL) (set DEB_REUSE_BUILD= to have
# debian/rules configure and build from scratch), then runs lintian.
DEB_REUSE_BUILD ?= 1
deb: deps-deb webmail-deps $(BUILD_INSTALL)/build.ninja
	meson configure $(BUILD_INSTALL) -Dprefix=/usr -Dsendmail_links=false
	ninja -C $(BUILD_INSTALL) $(INSTALL_TARGETS)
	rm -rf $(DEB_OUT) && mkdir -p $(DEB_OUT)/src
	tar -c --exclude-vcs --exclude='./build*' --exclude='./$(DEB_OUT)' --exclude=./var . \
	    | tar -x -C $(DEB_OUT)/src
	cd $(DEB_OUT)/src && DEB_BUILD_OPTIONS=nocheck \
	    WHARF_BUILD_DIR=$(if $(DEB_REUSE_BUILD),$(abspath $(BUILD_INSTALL))) \
	    dpkg-buildpackage -b -us -uc --no-sign
	rm -rf $(DEB_OUT)/src
	lintian --fail-on error $(DEB_OUT)/*.changes

unit: build-san
	meson test -C $(BUILD_SAN) --print-errorlogs

# Two test processes (pytest-xdist): most tests wait on a server, not on the
# CPU. Each process hands out ports from its own block (conftest.free_port).
TEST_JOBS ?= 2
integration: build-san
	WHARF_BUILD=$(abspath $(BUILD_SAN)) $(PYTHON) -m pytest -q -rs -p no:cacheprovider --durations=25 \
	    -n $(TEST_JOBS) tests/integration

build-fuzz/build.ninja:
	CC=clang meson setup build-fuzz -Dfuzz=true -Dtests=disabled -Db_sanitize=address,undefined \
	    -Db_lundef=false

# libFuzzer builds of every fuzz target (clang), and nothing else of the tree
# (the programs and unit tests are built and run by build-san); run one with
#   build-fuzz/src/smtp/fuzz_smtp_command -max_total_time=300 tests/fuzz/corpus/smtp_command
fuzz: build-fuzz/build.ninja
	ninja -C build-fuzz $$(ninja -C build-fuzz -t targets all | \
	    sed -n 's|^\(src/[^:]*/fuzz_[^:/.]*\): .*|\1|p' | sort -u)

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
	    UBSAN_OPTIONS=halt_on_error=1 $$f -seed=1 -runs=10000 -max_len=65536 $$new $$corpus \
	        >build-fuzz/$$name.log 2>&1 || { tail -30 build-fuzz/$$name.log; exit 1; }; \
	done

bench:
	@echo "see bench/README.md: each bench/NAME/run script compares Wharf with a peer"

format:
	find src tests -name '*.[ch]' -print0 | xargs -0 clang-format -i

clean:
	rm -rf $(BUILD) $(BUILD_SAN) build-fuzz $(BUILD_INSTALL) $(DEB_OUT)
