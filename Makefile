# Thin wrapper over Meson.  The README's two commands are `make demo` and
# `make check`; both install missing Debian packages first.

BUILD   ?= build
ASAN    ?= build-asan
FUZZ    ?= build-fuzz
PYTHON  ?= /usr/bin/python3
DEMO_DIR ?= .demo-data
LISTEN  ?= 127.0.0.1:8080
FUZZ_SECONDS ?= 60

.PHONY: all deps build demo check unit system fuzz fuzz-replay bench format clean

all: build

deps:
	@scripts/install-deps

# Test builds: the SANDGATE_TEST_* hooks the system tests use, and warnings
# as errors.  A build people run (make build, a plain `meson setup`) has
# neither: a newer compiler's new warning must not stop `make demo`.
TEST_OPTS = -Dtest_hooks=true -Dwerror=true

$(BUILD)/build.ninja:
	meson setup $(BUILD) --buildtype=release -Db_ndebug=true

build: deps $(BUILD)/build.ninja
	@ninja -C $(BUILD)

demo: build
	@rm -rf $(DEMO_DIR)
	$(BUILD)/sandgate serve --demo --data-dir $(DEMO_DIR) --listen $(LISTEN)

# A build directory set up before src/json/ brought C++ has no C++ compiler,
# and a reconfigure cannot add clang++ to it: such a directory is made anew.
has_cpp = [ -f $(1)/build.ninja ] && grep -q '"cpp"' $(1)/meson-info/intro-compilers.json

# A stamp, not build.ninja, so a test build set up before TEST_OPTS changed
# (or before an option existed) is reconfigured with them once.
$(ASAN)/.test-opts: Makefile
	if $(call has_cpp,$(ASAN)); then meson setup --reconfigure $(ASAN) $(TEST_OPTS); \
	else rm -rf $(ASAN) && CC=clang CXX=clang++ meson setup $(ASAN) --buildtype=debug \
	    -Db_sanitize=address,undefined -Db_lundef=false -Dc_args=-fno-sanitize-recover=all \
	    -Dcpp_args=-fno-sanitize-recover=all $(TEST_OPTS); fi
	@touch $@

unit: deps $(ASAN)/.test-opts
	@ninja -C $(ASAN)
	meson test -C $(ASAN) --print-errorlogs --num-processes 2

system: deps $(ASAN)/.test-opts
	@ninja -C $(ASAN)
	SANDGATE_BIN=$(CURDIR)/$(ASAN)/sandgate $(PYTHON) -m pytest -q -p no:cacheprovider tests/system

check: unit system fuzz-replay

$(FUZZ)/.test-opts: Makefile
	if $(call has_cpp,$(FUZZ)); then meson setup --reconfigure $(FUZZ) $(TEST_OPTS); \
	else rm -rf $(FUZZ) && CC=clang CXX=clang++ meson setup $(FUZZ) --buildtype=debug -Dfuzz=true \
	    -Db_sanitize=address,undefined -Db_lundef=false $(TEST_OPTS); fi
	@touch $@

fuzz: deps $(FUZZ)/.test-opts
	@ninja -C $(FUZZ)
	scripts/run-fuzzers $(FUZZ) $(FUZZ_SECONDS)

fuzz-replay: deps $(FUZZ)/.test-opts
	@ninja -C $(FUZZ)
	scripts/run-fuzzers $(FUZZ) 0

bench: build
	bench/run

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(ASAN) $(FUZZ) $(DEMO_DIR)
