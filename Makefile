# ntp-monitor: `make run` and `make test` are the two commands; each installs what is missing.
JOBS ?= 2
BUILD_TYPE ?= RelWithDebInfo
CMAKE_FLAGS ?=
PYTHON ?= /usr/bin/python3
FUZZ_SECONDS ?= 20

.PHONY: all deps build-deps configure binary build python run demo test unit asan fuzz integration \
        deploy test-fresh bench coverage format format-check clean

all: build

# Everything the tests need (build-deps is the part that building the binary needs).
deps:
	@./scripts/install-deps

build-deps:
	@./scripts/install-deps --build-only

# WITH_TESTS: whether build/ also has the unit tests and benchmarks (their libraries are
# installed by `deps`, not by `build-deps`).
WITH_TESTS ?= ON
configure:
	cmake -S . -B build -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DNTPMON_WERROR=ON \
	  -DNTPMON_TESTS=$(WITH_TESTS) -DNTPMON_BENCH=$(WITH_TESTS) $(CMAKE_FLAGS)

# Only build/ntp-monitor (what ./install builds), with what build-deps installs.
binary: build-deps
	$(MAKE) configure WITH_TESTS=OFF
	cmake --build build -j$(JOBS) --target ntp-monitor

# The binary, the example, the unit tests and the benchmarks.
build: deps
	$(MAKE) configure WITH_TESTS=ON
	cmake --build build -j$(JOBS)

# The Python binding alone (`build` makes it too): build/python/ntp_monitor, used as
# PYTHONPATH=build/python python3 -c "from ntp_monitor import NTPClient". docs/python.md.
python: deps
	$(MAKE) configure WITH_TESTS=ON
	cmake --build build -j$(JOBS) --target ntpmon_python

# The monitoring daemon on the seed configuration: metrics on :9100, dashboard on :8000.
run: binary
	./build/ntp-monitor --config config/servers.yaml --prometheus-port 9100 --web-dashboard 8000

# A simulated fleet on loopback, monitored with metrics and dashboard: no internet needed.
demo: binary
	./build/ntp-monitor demo --prometheus-port 9100 --web-dashboard 8000

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

# The dashboard test drives headless Chromium with playwright-core, installed into the build.
integration: build
	cmake --build build -j$(JOBS) --target ntpmon_web_test_driver
	$(PYTHON) -m pytest -q tests/integration

# The container image and the Debian package, built and run here (podman, a minimal Debian 12
# root from mmdebstrap): tests/deploy.
deploy: deps
	$(PYTHON) -m pytest -q -s -m "not fresh" tests/deploy

test: format-check unit asan fuzz integration deploy

# The README's commands on a minimal Debian 12 with nothing but the clone: tests/deploy.
test-fresh: deps
	$(PYTHON) -m pytest -q -s -m fresh tests/deploy

bench: build
	./build/bench/ntpmon_bench
	$(PYTHON) bench/accuracy.py --binary build/ntp-monitor
	$(PYTHON) bench/python_client.py --build build

# Coverage of the unit and integration suites: C++ lines and branches (gcovr) and the Python
# binding and example (pytest-cov), a build of its own in build-coverage/ (-O0 --coverage).
# The reports: build-coverage/coverage/index.html (C++) and build-coverage/python-html/index.html
# (Python); the summaries are printed at the end.
# No ccache here: its relative paths (CCACHE_BASEDIR) end up in the .gcno files, where gcov
# cannot resolve them. COVERAGE_TESTS narrows the integration part (pytest paths). Both suites run
# whatever the other printed; the exit status is non-zero if either failed, after the reports.
COVERAGE_FLAGS = --coverage -fprofile-update=atomic -O0 -g
COVERAGE_TESTS ?= tests/integration
coverage: deps
	cmake -S . -B build-coverage -DCMAKE_BUILD_TYPE=Debug -DNTPMON_BENCH=OFF -DNTPMON_TESTS=ON \
	  -DNTPMON_PYTHON=ON -DNTPMON_CCACHE=OFF -DCMAKE_CXX_FLAGS="$(COVERAGE_FLAGS)" \
	  -DCMAKE_EXE_LINKER_FLAGS=--coverage -DCMAKE_MODULE_LINKER_FLAGS=--coverage
	find build-coverage -name '*.gcda' -delete
	cmake --build build-coverage -j$(JOBS)
	cmake --build build-coverage -j$(JOBS) --target ntpmon_web_test_driver
	cd build-coverage && ctest -j$(JOBS) --output-on-failure; echo $$? > ctest-status
	NTPMON_BUILD_DIR=$(CURDIR)/build-coverage COVERAGE_FILE=$(CURDIR)/build-coverage/.coverage \
	  $(PYTHON) -m pytest -q $(COVERAGE_TESTS) \
	  --cov=build-coverage/python/ntp_monitor --cov=examples --cov-branch \
	  --cov-report=html:build-coverage/python-html --cov-report=term; \
	  echo $$? > build-coverage/pytest-status
	mkdir -p build-coverage/coverage
	gcovr --root . --object-directory build-coverage --filter 'src/' --filter 'python/' \
	  --exclude-unreachable-branches --exclude-throw-branches --gcov-ignore-parse-errors \
	  --html-details build-coverage/coverage/index.html --txt build-coverage/coverage/summary.txt \
	  --print-summary
	@echo "C++ report: build-coverage/coverage/index.html; per file: build-coverage/coverage/summary.txt"
	@echo "Python report: build-coverage/python-html/index.html"
	@echo "ctest exit status $$(cat build-coverage/ctest-status), pytest exit status $$(cat build-coverage/pytest-status)"
	@test "$$(cat build-coverage/ctest-status)" = 0 && exit $$(cat build-coverage/pytest-status)

CXX_SOURCES = git ls-files '*.cpp' '*.hpp'

format:
	$(CXX_SOURCES) | xargs clang-format -i

format-check: deps
	$(CXX_SOURCES) | xargs clang-format --dry-run --Werror

clean:
	rm -rf build build-asan build-fuzz build-deploy build-coverage build-wheel
