# The two commands: `make run` and `make test`. Both install missing Debian packages first.
BUILD_DIR ?= build
BUILD_TYPE ?= Release
JOBS ?= $(shell nproc)
LISTEN ?= 127.0.0.1:7070
DATA ?= ./berth-data
# Caddy's shared listener: curl -H 'Host: <name>.localhost' 127.0.0.1:8080
HTTP_PORT ?= 8080

.PHONY: run test deps build bench bench-all clean soak fuzz

deps:
	@bash scripts/install-deps.sh

build: deps
	@cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) >/dev/null
	@cmake --build $(BUILD_DIR) -j$(JOBS)

run: build
	$(BUILD_DIR)/berth serve --listen $(LISTEN) --data $(DATA) --switch-mode proxy --proxy-http-port $(HTTP_PORT)

test: build
	cd $(BUILD_DIR) && ctest --output-on-failure --timeout 600 -j$(JOBS)

# The results table: peers installed, benches run, bench/results/latest.md written (bench/README.md).
bench: build
	bash bench/run.sh $(BUILD_DIR)

# Every bench executable of bench/*.cpp with its own plain output, as before the table.
bench-all: build
	bash bench/run.sh --all $(BUILD_DIR)

# libFuzzer targets (fuzz/README.md), built with clang in $(BUILD_DIR)/fuzz; FUZZ_SECONDS each.
FUZZ_SECONDS ?= 60
fuzz: deps
	bash scripts/fuzz.sh $(BUILD_DIR)/fuzz $(FUZZ_SECONDS)

# The fault loop in full: deploys, kill -9 of berth at random moments, restart, check.
# `make test` runs it with 8 rounds.
SOAK_ROUNDS ?= 60
soak: build
	cd $(BUILD_DIR) && BERTH_SOAK_ROUNDS=$(SOAK_ROUNDS) ./berth_integration_tests '[soak]'

clean:
	rm -rf $(BUILD_DIR)
