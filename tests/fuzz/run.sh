#!/usr/bin/env bash
# Runs every fuzz target of build-fuzz/ for FUZZ_SECONDS each (default 30), two at a
# time (CI has two cores), each from its checked-in seed corpus. New inputs go to
# build-fuzz/fuzz-corpus/<target>/, never into the checked-in corpus; a crash leaves
# its input in build-fuzz/fuzz-artifacts/ and fails the run. Usage:
#   tests/fuzz/run.sh [build-dir] [target…]    (FUZZ_SECONDS, FUZZ_JOBS, FUZZ_SEED from the environment)
# FUZZ_SEED fixes libFuzzer's seed, as CI does so that its short runs repeat; 0 (the
# default) is a new seed each run, for finding what no one has yet.
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build-fuzz}
shift || true
seconds=${FUZZ_SECONDS:-30}
jobs=${FUZZ_JOBS:-2}
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cd tests/fuzz && ls fuzz_*.cpp | sed 's/\.cpp$//')
fi
mkdir -p "$build/fuzz-artifacts" "$build/fuzz-logs"

run_one() {
  local build=$1 seconds=$2 target=$3
  local corpus="$build/fuzz-corpus/$target"
  local dict=()
  mkdir -p "$corpus"
  [ -f "tests/fuzz/$target.dict" ] && dict=(-dict="tests/fuzz/$target.dict")
  # -timeout: an input that takes 10 s is a hang; -rss_limit_mb: CI's machine has 7 GiB
  # for two fuzzers and the sanitizers' shadow memory.
  if "$build/tests/fuzz/$target" "${dict[@]}" -max_total_time="$seconds" -seed="${FUZZ_SEED:-0}" -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 -artifact_prefix="$build/fuzz-artifacts/$target-" \
      "$corpus" "tests/fuzz/corpus/$target" >"$build/fuzz-logs/$target.log" 2>&1; then
    printf 'tidewatch fuzz: %-24s ok   %s\n' "$target" \
      "$(grep -E '^stat::number_of_executed_units|cov: ' "$build/fuzz-logs/$target.log" | tail -2 | tr '\n' ' ')"
  else
    printf 'tidewatch fuzz: %-24s FAILED (log: %s)\n' "$target" "$build/fuzz-logs/$target.log"
    tail -40 "$build/fuzz-logs/$target.log"
    return 1
  fi
}
export -f run_one

printf '%s\n' "${targets[@]}" | xargs -P "$jobs" -I{} bash -c 'run_one "$@"' _ "$build" "$seconds" {}
