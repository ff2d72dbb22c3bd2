# Tidewatch — the two commands a new machine needs:
#   make run    install what is missing, build (Release) and open the app on the demo
#   make test   install what is missing, build and run every test
BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc)
CMAKE_ARGS ?=
GENERATOR  := $(shell command -v ninja >/dev/null 2>&1 && echo "-G Ninja")

.PHONY: all deps configure build run test test-asan bench package clean

all: build

deps:
	@./packaging/install-deps.sh

configure: deps
	cmake -S . -B $(BUILD) $(GENERATOR) -DCMAKE_BUILD_TYPE=Release -DTIDEWATCH_WERROR=ON $(CMAKE_ARGS)

build: configure
	cmake --build $(BUILD) -j$(JOBS)

run: build
	@if [ -z "$$DISPLAY" ] && [ -z "$$WAYLAND_DISPLAY" ]; then \
	  echo "tidewatch: no display here; running under xvfb-run (use '$(BUILD)/app/tidewatch --headless --demo' for a terminal feed)"; \
	  xvfb-run -a $(BUILD)/app/tidewatch --demo; \
	else \
	  $(BUILD)/app/tidewatch --demo; \
	fi

test: build
	ctest --test-dir $(BUILD) --output-on-failure -j2

# The same tests in an AddressSanitizer + UndefinedBehaviorSanitizer build.
test-asan: deps
	cmake -S . -B $(ASAN_BUILD) $(GENERATOR) -DCMAKE_BUILD_TYPE=Debug -DTIDEWATCH_WERROR=ON \
	  -DTIDEWATCH_SANITIZE=ON -DTIDEWATCH_BUILD_BENCH=OFF $(CMAKE_ARGS)
	cmake --build $(ASAN_BUILD) -j$(JOBS)
	ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --test-dir $(ASAN_BUILD) --output-on-failure -j2

bench: build
	@echo "see bench/README.md for each benchmark and its command"

package: build
	cd $(BUILD) && cpack -G DEB

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
