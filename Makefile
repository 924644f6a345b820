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

$(BUILD)/build.ninja:
	meson setup $(BUILD) --buildtype=release -Db_ndebug=true

build: deps $(BUILD)/build.ninja
	@ninja -C $(BUILD)

demo: build
	@rm -rf $(DEMO_DIR)
	$(BUILD)/sandgate serve --demo --data-dir $(DEMO_DIR) --listen $(LISTEN)

$(ASAN)/build.ninja:
	CC=clang meson setup $(ASAN) --buildtype=debug -Db_sanitize=address,undefined \
	    -Db_lundef=false -Dc_args=-fno-sanitize-recover=all

unit: deps $(ASAN)/build.ninja
	@ninja -C $(ASAN)
	meson test -C $(ASAN) --print-errorlogs --num-processes 2

system: deps $(ASAN)/build.ninja
	@ninja -C $(ASAN)
	SANDGATE_BIN=$(CURDIR)/$(ASAN)/sandgate $(PYTHON) -m pytest -q -p no:cacheprovider tests/system

check: unit system fuzz-replay

$(FUZZ)/build.ninja:
	CC=clang meson setup $(FUZZ) --buildtype=debug -Dfuzz=true \
	    -Db_sanitize=address,undefined -Db_lundef=false

fuzz: deps $(FUZZ)/build.ninja
	@ninja -C $(FUZZ)
	scripts/run-fuzzers $(FUZZ) $(FUZZ_SECONDS)

fuzz-replay: deps $(FUZZ)/build.ninja
	@ninja -C $(FUZZ)
	scripts/run-fuzzers $(FUZZ) 0

bench: build
	bench/run

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(ASAN) $(FUZZ) $(DEMO_DIR)
