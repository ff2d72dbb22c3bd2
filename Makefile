# Tidewatch — the two commands a new machine needs:
#   make run    install what is missing, build (Release) and open the app on the demo
#   make test   install what is missing, build and run every test
# Builds go through CMakePresets.json (release → build/, asan → build-asan/,
# tsan → build-tsan/, dev → build-dev/, fuzz → build-fuzz/).
JOBS ?= $(shell nproc)

FUZZ_SECONDS ?= 30
FUZZ_SEED ?= 0

.PHONY: all deps configure build run test test-asan test-tsan test-all fuzz format-check bench package clean

all: build

deps:
	@./packaging/install-deps.sh
	@[ -d tests/mcp/node_modules ] || { command -v npm >/dev/null || apt-get install -y --no-install-recommends nodejs npm; npm ci --prefix tests/mcp --no-audit --no-fund; }

configure: deps
	cmake --preset release

build: configure
	cmake --build --preset release -j$(JOBS)

run: build
	@if [ -z "$$DISPLAY" ] && [ -z "$$WAYLAND_DISPLAY" ]; then \
	  echo "tidewatch: no display here; running under xvfb-run (use 'build/app/tidewatch --headless --demo' for a terminal feed)"; \
	  xvfb-run -a build/app/tidewatch --demo; \
	else \
	  build/app/tidewatch --demo; \
	fi

test: build
	ctest --preset release

# The same tests in an AddressSanitizer + UndefinedBehaviorSanitizer build.
test-asan: deps
	cmake --preset asan
	cmake --build --preset asan -j$(JOBS)
	ctest --preset asan

# The engine, journal, SSE, source and headless suites under ThreadSanitizer
# (tests/tsan.supp says what is suppressed and why).
test-tsan: deps
	cmake --preset tsan
	cmake --build --preset tsan -j$(JOBS)
	ctest --preset tsan

# The libFuzzer targets (tests/fuzz/README.md), built with clang, ASan and UBSan, each
# run for FUZZ_SECONDS, two at a time; FUZZ_SEED fixes libFuzzer's seed (0: random).
fuzz: deps
	cmake --preset fuzz
	cmake --build --preset fuzz -j$(JOBS)
	FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_SEED=$(FUZZ_SEED) tests/fuzz/run.sh build-fuzz

# What CI runs after the format check: Release, then both sanitizer builds.
test-all: test test-asan test-tsan

# Fails when a tracked C++ file is not formatted with the repository's .clang-format.
format-check:
	git ls-files -z '*.cpp' '*.h' | xargs -0 clang-format --dry-run -Werror

bench: build
	@echo "see bench/README.md for each benchmark and its command"

package: build
	cd build && cpack -G DEB

clean:
	rm -rf build build-asan build-tsan build-dev build-fuzz
