# ntp-monitor: `make run` and `make test` are the two commands; each installs what is missing.
JOBS ?= 2
BUILD_TYPE ?= RelWithDebInfo
CMAKE_FLAGS ?=
PYTHON ?= /usr/bin/python3
FUZZ_SECONDS ?= 20

.PHONY: all deps build run test unit asan fuzz integration bench format clean

all: build

deps:
	@./scripts/install-deps

build: deps
	cmake -S . -B build -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DNTPMON_WERROR=ON $(CMAKE_FLAGS)
	cmake --build build -j$(JOBS)

# Until the monitoring daemon lands, `make run` queries every server of config/servers.yaml.
run: build
	./build/ntp-monitor query --config config/servers.yaml

unit: build
	cd build && ctest --output-on-failure -j$(JOBS)

# Unit tests of the pure core under AddressSanitizer + UndefinedBehaviorSanitizer.
asan: deps
	cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DNTPMON_WERROR=ON -DNTPMON_SANITIZE=ON \
	  -DNTPMON_PURE_ONLY=ON -DNTPMON_BENCH=OFF
	cmake --build build-asan -j$(JOBS)
	cd build-asan && ctest --output-on-failure -j$(JOBS)

# libFuzzer targets (clang), each run briefly from the checked-in corpus.
fuzz: deps
	CXX=clang++ cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNTPMON_FUZZ=ON \
	  -DNTPMON_PURE_ONLY=ON -DNTPMON_BENCH=OFF
	cmake --build build-fuzz -j$(JOBS) --target fuzz_all
	./fuzz/run-fuzzers build-fuzz $(FUZZ_SECONDS)

integration: build
	$(PYTHON) -m pytest -q tests/integration

test: unit asan fuzz integration

bench: build
	./build/bench/ntpmon_bench
	$(PYTHON) bench/accuracy.py --binary build/ntp-monitor

format:
	find src tests fuzz bench examples -name '*.cpp' -o -name '*.hpp' | xargs clang-format -i

clean:
	rm -rf build build-asan build-fuzz
