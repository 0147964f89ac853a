# mfpsecd developer entry points. `make setup` is idempotent and is a prerequisite of
# run, test, lint and bench, so each of them works alone on a fresh Debian 12.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= /usr/bin/python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.setup-stamp
APT_STAMP := $(VENV)/.apt-stamp
BUILD := build

# Build: compiler, meson/ninja, system libcrypto and libargon2 headers (password hashing
# runs on libargon2, which wipes its memory), Python headers and venv.
# Run/test: systemd tools (systemd-analyze, systemd-socket-activate), setpriv,
# dbus-daemon and libdbus (the D-Bus peer in bench/ipc).
# Keys: libtss2-dev (tpm2-pytss builds against it), swtpm (the simulated board's TPM),
# umockdev + its GObject bindings for the system python (USB events in tests).
# Virus scan: clamav-daemon (the clamd the scan tests start) and clamdscan (the bench peer).
# Audit: rsyslog with its OpenSSL driver (the SIEM receiver in tests), snmptrapd (traps).
# Fleet monitoring: snmpd (the AgentX master), snmp (snmpwalk, snmptranslate), smitools
# (smilint checks the MFPSEC-MIB).
# Overwrite: scrub and shred (coreutils), the peers in bench/overwrite; openssl (the
# offline check of certificates and the identity history in tests), poppler-utils (what
# the printable certificate shows, read back in tests), jq (the canonical posture report for
# openssl, as README shows).
# Media purge: QEMU with busybox, nvme-cli, hdparm, mmc-utils, sg3-utils, cpio and kmod
# (the guest of the opt-in `qemu` suite; its kernel is Debian's, fetched by apt at first use).
# Lint: clang-format (the C style, .clang-format).
# The panel example in C (examples/panel-c, built and run by its test): json-c.
# IP filter: nftables (nft, and libnftables' Python binding, which is not on PyPI: the venv
# gets a link to Debian's), iproute2, ping and sysctl (procps) (network namespaces in tests).
APT_PACKAGES := build-essential pkg-config libssl-dev python3-dev python3-venv \
	ninja-build systemd util-linux dbus-daemon libdbus-1-dev \
	libtss2-dev swtpm umockdev gir1.2-umockdev-1.0 python3-gi \
	clamav-daemon clamdscan \
	rsyslog rsyslog-openssl snmptrapd snmpd snmp smitools libargon2-1 libargon2-dev softhsm2 \
	scrub coreutils fdisk e2fsprogs nftables python3-nftables iproute2 iputils-ping procps \
	qemu-system-x86 busybox-static nvme-cli hdparm mmc-utils sg3-utils cpio kmod openssl \
	poppler-utils jq clang-format libjson-c-dev man-db debhelper lintian fwupd usbguard

SIM_CONFIG := hw/mfpsecd.sim.toml

# The venv first: meson-python and the editable rebuild look up meson and ninja on PATH.
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: help setup setup-cross deb sources sim-firmware sim-ns sim-net run test test-native test-cross test-python trace \
	lint format bench idl clean

help:
	@echo "make setup   install apt + Python dependencies into $(VENV), build the extension"
	@echo "make run     run the daemon in the foreground on the simulated board (hw/sim.toml)"
	@echo "make test    C tests (plain and ASan/UBSan) and the Python test suite"
	@echo "make trace   the CC traceability matrix (docs/traceability.md) from the last make test"
	@echo "make test-cross  C engines built for arm64 and armhf, their tests under qemu-user"
	@echo "make lint    ruff format + check, clang-format, mypy, import-linter contracts"
	@echo "make format  rewrite Python (ruff format) and C (clang-format) in the house style"
	@echo "make bench   side-by-side benchmarks (results in bench/results/)"
	@echo "make idl     regenerate the committed .varlink interface files"

setup: $(STAMP) sources sim-firmware

# meson lists the package's files at configure time (it has no glob): when a module is
# added or removed, reconfigure so that the editable install sees it.
SOURCES_LIST := $(BUILD)/py/.package-sources
sources: $(STAMP)
	@$(BIN)/python tools/list_sources.py mfpsecd > $(SOURCES_LIST).new
	@if cmp -s $(SOURCES_LIST).new $(SOURCES_LIST); then rm -f $(SOURCES_LIST).new; else \
		echo "setup: package files changed, reconfiguring $(BUILD)/py"; \
		$(BIN)/meson setup --reconfigure $(BUILD)/py >/dev/null && \
		mv $(SOURCES_LIST).new $(SOURCES_LIST); fi

$(APT_STAMP): Makefile
	@missing=$$(dpkg-query -W -f='$${Package} $${Status}\n' $(APT_PACKAGES) 2>/dev/null \
		| awk '$$NF != "installed" {print $$1}'; \
		for p in $(APT_PACKAGES); do dpkg-query -W $$p >/dev/null 2>&1 || echo $$p; done); \
	missing=$$(echo $$missing | tr ' ' '\n' | sort -u | tr '\n' ' '); \
	if [ -n "$${missing// }" ]; then \
		echo "setup: installing apt packages: $$missing"; \
		SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	@[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	@site=$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'); \
		ln -sfn /usr/lib/python3/dist-packages/nftables $$site/nftables
	@touch $@

# Python dependencies in two steps, so that nothing depends on a pip cache:
# 1. every requirement pyproject.toml declares (runtime, the dev extra, and the build
#    backend the editable install needs) becomes a wheel in $(WHEELS). An sdist without a
#    wheel (tpm2-pytss) is built in its own isolated environment, whose build requirements
#    are pinned by --build-constraint like everything else; the venv then installs from
#    $(WHEELS) alone.
# 2. the project itself, editable, without build isolation (meson-python from the venv)
#    and without dependencies (all installed in step 1). Verbose: its import hook then
#    writes no build log unless there is something to rebuild, so a uid that may not
#    write build/ (a service engineer running mfpsec, a test's other uid) can import it.
# $(WHEELS) is also where tests/packaging installs the project's runtime dependencies
# into a fresh venv from, offline.
WHEELS := $(BUILD)/wheels
# tpm2-pytss builds its FAPI binding when pkg-config finds tss2-fapi, and FAPI links
# libcurl, Kerberos and LDAP (some 30 libraries) into the daemon, which uses ESAPI only:
# it is built, first and never from pip's cache, against a pkg-config path without it.
NOFAPI_PC := $(BUILD)/pkgconfig-without-fapi
REQUIREMENTS := $(BUILD)/requirements.txt
# The optional parts' extras (pyproject.toml): the checkout runs and tests all of them.
PARTS := snmp card-login pdf
$(STAMP): $(APT_STAMP) pyproject.toml constraints.txt meson.build meson.options native/meson.build \
		tools/requirements.py
	$(BIN)/python -m pip install -q -c constraints.txt pip
	@# An editable install from an earlier setup rebuilds itself at its first import (after
	@# a meson file changed): let it happen here, not inside pip's isolated builds below,
	@# which lack meson and would fail with "No module named mesonbuild".
	-@$(BIN)/python -c "import mfpsecd" >/dev/null 2>&1
	@mkdir -p $(BUILD)
	$(BIN)/python tools/requirements.py --build --extra dev $(PARTS:%=--extra %) > $(REQUIREMENTS)
	@rm -rf $(NOFAPI_PC) && mkdir -p $(NOFAPI_PC) && \
		for d in $$(pkg-config --variable pc_path pkg-config | tr ':' ' '); do \
			for f in $$d/*.pc; do [ -e "$$f" ] && [ "$${f##*/}" != tss2-fapi.pc ] && \
				ln -s "$$f" $(NOFAPI_PC)/ 2>/dev/null; done; done; true
	PKG_CONFIG_LIBDIR=$(CURDIR)/$(NOFAPI_PC) $(BIN)/python -m pip wheel -q --no-cache-dir --no-deps \
		-w $(WHEELS) -c constraints.txt --build-constraint constraints.txt tpm2-pytss
	$(BIN)/python -m pip wheel -q -w $(WHEELS) --find-links $(WHEELS) -c constraints.txt \
		--build-constraint constraints.txt -r $(REQUIREMENTS)
	$(BIN)/python -m pip install -q --no-index --find-links $(WHEELS) -c constraints.txt \
		-r $(REQUIREMENTS)
	$(BIN)/python -m pip install -q --no-index --no-build-isolation --no-deps \
		-Cbuild-dir=$(BUILD)/py -Ceditable-verbose=true -Csetup-args=-Dwerror=true -e .
	$(BIN)/python -c "import mfpsecd._native as n; [n.crypto_selftest(i) for i in range(len(n.crypto_selftests()))]; print('native ok:', n.crypto_version())"
	@touch $@

# The simulated board's factory firmware (slot a), signed with the development key. A
# later `mfpsec fw update` writes slot b; `make clean` starts over.
SIM_SLOT_A := .state/sim/lib/firmware/a
SIM_VERSION = $(shell $(BIN)/python -c "import mfpsecd; print(mfpsecd.__version__)")
sim-firmware: $(STAMP)
	@[ -f $(SIM_SLOT_A)/manifest.json ] || { rm -rf $(SIM_SLOT_A) && \
		$(BIN)/mfpsecd fw-sign --key hw/sim-firmware/dev-signer.key \
		--certificate hw/sim-firmware/dev-signer.pem --product mfpsecd-sim \
		--version $(SIM_VERSION) --epoch 1 --model mfp-sim --tree mfpsecd $(SIM_SLOT_A); }

# The simulated board's network: a namespace with a wired and a wireless interface (veth
# pairs: not every kernel has the dummy driver),
# addressed as in SPEC N-3's example (root only; without it the filter reports FAILED).
# The namespace is this checkout's (hw/sim.toml says mfpsim-{profile}: the first 8 hex of
# the SHA-256 of the resolved hw directory), so two checkouts never share a filter.
SIM_NS := mfpsim-$(shell printf '%s' "$(realpath hw)" | sha256sum | cut -c1-8)
sim-ns:
	@echo $(SIM_NS)
sim-net:
	@if [ "$$(id -u)" != 0 ]; then echo "sim-net: not root, the simulated network is skipped"; \
	elif ! ip -n $(SIM_NS) link show lan0 >/dev/null 2>&1; then \
		{ ip netns exec $(SIM_NS) true 2>/dev/null || ip netns add $(SIM_NS); } && \
		ip -n $(SIM_NS) link set lo up && \
		ip -n $(SIM_NS) link add lan0 type veth peer name lan0-peer && \
		ip -n $(SIM_NS) link add wlan0 type veth peer name wlan0-peer && \
		ip -n $(SIM_NS) addr add 192.168.0.134/24 dev lan0 && \
		ip -n $(SIM_NS) addr add 2345:1:2:3:4:5:6:7/64 dev lan0 nodad && \
		for i in lan0 lan0-peer wlan0 wlan0-peer; do ip -n $(SIM_NS) link set $$i up; done && \
		echo "sim-net: namespace $(SIM_NS) with lan0 (192.168.0.134/24) and wlan0"; fi

run: setup sim-net
	@mkdir -p .state
	@$(BIN)/python -m tools.sim_usb init
	@echo "mfpsecd: talk to it from another shell with:"
	@echo "  export MFPSEC_SOCKET=$(CURDIR)/.state/sim/run/mfpsecd.sock; $(BIN)/mfpsec status"
	@# What the boot units do on a device: the IP filter before the network, then the
	@# firmware check (normal security mode: a failure only alerts).
	-$(BIN)/mfpsecd net-restore --config $(SIM_CONFIG) --board sim
	$(BIN)/mfpsecd fw-verify --boot --config $(SIM_CONFIG) --board sim
	$(BIN)/mfpsecd run --config $(SIM_CONFIG) --board sim

test: setup test-native test-python

# The C unit tests, once in a plain build and once under AddressSanitizer + UBSan.
test-native: setup
	@[ -f $(BUILD)/ctest/build.ninja ] || $(BIN)/meson setup $(BUILD)/ctest -Dpython_ext=false \
		-Dwerror=true >/dev/null
	$(BIN)/meson test -C $(BUILD)/ctest --print-errorlogs
	@[ -f $(BUILD)/ctest-asan/build.ninja ] || $(BIN)/meson setup $(BUILD)/ctest-asan \
		-Dpython_ext=false -Dwerror=true -Db_sanitize=address,undefined -Db_lundef=false \
		-Dbuildtype=debug -Dc_args=-fno-sanitize-recover=all >/dev/null
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		$(BIN)/meson test -C $(BUILD)/ctest-asan --print-errorlogs

# The C engines cross-built for the controllers we ship to, 64-bit (arm64: aarch64) and
# 32-bit ARM (armhf: ARMv7-A hard float), their unit tests run under qemu-user. The
# target's libcrypto and libargon2 come from Debian's packages for that architecture,
# unpacked into $(SYSROOTS) (cross/sysroot.sh says why not multiarch -dev packages).
CROSS_ARCHS := arm64 armhf
CROSS_APT_PACKAGES := gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf libc6-dev-arm64-cross \
	libc6-dev-armhf-cross qemu-user-static
SYSROOTS := $(BUILD)/sysroot

setup-cross: $(APT_STAMP)
	@missing=$$(for p in $(CROSS_APT_PACKAGES); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	foreign=$$(for a in $(CROSS_ARCHS); do \
		dpkg --print-foreign-architectures | grep -qx $$a || echo $$a; done); \
	missing_roots=$$(for a in $(CROSS_ARCHS); do [ -f $(SYSROOTS)/$$a.ini ] || echo $$a; done); \
	SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	for a in $$foreign; do $$SUDO dpkg --add-architecture $$a; done; \
	if [ -n "$$missing$$foreign$$missing_roots" ]; then \
		echo "setup-cross: apt indexes (an index that fails to download is only a warning)"; \
		$$SUDO apt-get update -qq || true; fi; \
	if [ -n "$$missing" ]; then \
		echo "setup-cross: installing $$missing"; \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi; \
	for a in $$missing_roots; do cross/sysroot.sh $$a $(SYSROOTS) || exit 1; done

test-cross: setup setup-cross
	@for a in $(CROSS_ARCHS); do \
		case $$a in arm64) triplet=aarch64-linux-gnu;; armhf) triplet=arm-linux-gnueabihf;; esac; \
		[ -f $(BUILD)/cross-$$a/build.ninja ] || $(BIN)/meson setup $(BUILD)/cross-$$a \
			-Dpython_ext=false -Dwerror=true --cross-file $(SYSROOTS)/$$a.ini \
			--cross-file cross/$$triplet.ini >/dev/null || exit 1; \
		echo "test-cross: $$a"; \
		MFP_TEST_EMULATED=1 $(BIN)/meson test -C $(BUILD)/cross-$$a --print-errorlogs || exit 1; \
	done

# The Debian package (debian/): built in a copy of the tree under $(BUILD)/deb, so the
# .deb and its .buildinfo/.changes land there, not beside the checkout.
DEB_TREE := $(BUILD)/deb/mfpsecd
deb: setup
	rm -rf $(BUILD)/deb && mkdir -p $(DEB_TREE)
	git ls-files -co --exclude-standard | grep -v '^debian/' | tar -cf - -T - | tar -xf - -C $(DEB_TREE)
	cp -a debian $(DEB_TREE)/
	cd $(DEB_TREE) && DEV=$(CURDIR)/$(BIN) WHEELS=$(CURDIR)/$(WHEELS) \
		dpkg-buildpackage -us -uc -b --no-sign
	@ls $(BUILD)/deb/*.deb

test-python: setup
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

# The Common Criteria traceability matrix from the last whole test run (make test):
# docs/traceability.md and .json, the Security Target's TSS; fails when an applicable
# SFR of docs/sfr.toml has no passing test (tools/trace.py).
trace: setup
	$(BIN)/python -m tools.trace --check

C_SOURCES := $(shell find native examples -name '*.[ch]' 2>/dev/null)

lint: setup
	$(BIN)/ruff format --check mfpsecd tests bench tools
	$(BIN)/ruff check mfpsecd tests bench tools
	clang-format --dry-run --Werror --style=file $(C_SOURCES)
	$(BIN)/mypy
	$(BIN)/python tools/lint_imports.py

format: setup
	$(BIN)/ruff format mfpsecd tests bench tools
	clang-format -i --style=file $(C_SOURCES)

bench: setup
	$(BIN)/python -m bench $(BENCH_ARGS)

idl: setup
	$(BIN)/python tools/write_idl.py
	$(BIN)/python -m tools.readme_tables

clean:
	rm -rf $(BUILD) .state
