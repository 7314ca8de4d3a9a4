#!/usr/bin/env bash
# Builds the libFuzzer targets of fuzz/ with clang and runs each for a bounded time.
#   scripts/fuzz.sh <build-dir> <seconds-per-target> [target…]
# Each target fuzzes <build-dir>/corpus/<target> (a copy of fuzz/corpus/<target>, kept across
# runs) with the repo's corpus as a read-only seed and fuzz/<target>.dict, so runs never change
# the repo. Findings
# (crash-*, leak-*, timeout-*, oom-*) go to <build-dir>/findings/<target>/, emptied at the
# start of the target's run. Prints a table; exits 1 on any finding, 2 on a usage or build error.
# Environment: FUZZ_CXX (default clang++), FUZZ_JOBS (build jobs, default 2),
# FUZZ_TIMEOUT_S (one input longer than this is a finding, default 10).
set -uo pipefail

if [ $# -lt 2 ] || ! [[ "$2" =~ ^[0-9]+$ ]] || [ "$2" -lt 1 ]; then
  echo "usage: $0 <build-dir> <seconds-per-target> [target...]" >&2
  exit 2
fi
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
mkdir -p "$1" || exit 2
BUILD="$(cd "$1" && pwd)"
SECONDS_PER_TARGET="$2"
shift 2
CXX_BIN="${FUZZ_CXX:-clang++}"
JOBS="${FUZZ_JOBS:-2}"
INPUT_TIMEOUT="${FUZZ_TIMEOUT_S:-10}"
TARGETS=("$@")
if [ ${#TARGETS[@]} -eq 0 ]; then
  TARGETS=()
  for src in "$ROOT"/fuzz/fuzz_*.cpp; do TARGETS+=("$(basename "$src" .cpp)"); done
fi

if ! command -v "$CXX_BIN" >/dev/null; then
  echo "fuzz: $CXX_BIN not found (scripts/install-deps.sh installs clang)" >&2
  exit 2
fi

build_start=$(date +%s)
if ! cmake -S "$ROOT/fuzz" -B "$BUILD" -DCMAKE_CXX_COMPILER="$CXX_BIN" >"$BUILD/configure.log" 2>&1; then
  cat "$BUILD/configure.log" >&2
  echo "fuzz: configuring failed" >&2
  exit 2
fi
if ! cmake --build "$BUILD" -j"$JOBS" --target "${TARGETS[@]}" >"$BUILD/build.log" 2>&1; then
  tail -n 60 "$BUILD/build.log" >&2
  echo "fuzz: building failed (log: $BUILD/build.log)" >&2
  exit 2
fi
build_s=$(( $(date +%s) - build_start ))
echo "fuzz: built ${#TARGETS[@]} targets in ${build_s} s; ${SECONDS_PER_TARGET} s each"

# The last value of a libFuzzer final stat, or "?".
stat_of() { grep -a "^stat::$2:" "$1" | tail -n 1 | awk '{print $2}' | grep . || echo "?"; }

# nlohmann/json allocates a lot: a smaller ASan quarantine and shorter malloc stacks double
# the exec rate without weakening the checks. UBSan reports get a stack.
export ASAN_OPTIONS="quarantine_size_mb=16:malloc_context_size=8${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"

rows=()
found=()
run_start=$(date +%s)
for t in "${TARGETS[@]}"; do
  seed="$ROOT/fuzz/corpus/$t"
  work="$BUILD/corpus/$t"
  findings="$BUILD/findings/$t"
  log="$BUILD/logs/$t.log"
  mkdir -p "$work" "$BUILD/logs"
  rm -rf "$findings" && mkdir -p "$findings"
  seeds=()
  if [ -d "$seed" ]; then
    cp -n "$seed"/* "$work"/ 2>/dev/null
    seeds=("$seed")
  fi
  dict=()
  [ -f "$ROOT/fuzz/$t.dict" ] && dict=(-dict="$ROOT/fuzz/$t.dict")
  before=$(find "$work" -type f | wc -l)
  # The target's own exit status is not trusted alone: findings are the artifact files.
  "$BUILD/$t" -max_total_time="$SECONDS_PER_TARGET" -timeout="$INPUT_TIMEOUT" "${dict[@]}" \
      -print_final_stats=1 -artifact_prefix="$findings/" "$work" "${seeds[@]}" >"$log" 2>&1
  rc=$?
  execs=$(stat_of "$log" number_of_executed_units)
  rate=$(stat_of "$log" average_exec_per_sec)
  if [ "$execs" = "?" ]; then  # ended by a crash: the last progress line has the count
    execs=$(grep -aoE '^#[0-9]+' "$log" | tail -n 1 | tr -d '#' | grep . || echo "?")
  fi
  after=$(find "$work" -type f | wc -l)
  n_find=$(find "$findings" -type f | wc -l)
  if [ "$n_find" -eq 0 ] && [ "$rc" -ne 0 ]; then  # died without leaving an input
    n_find=1
    found+=("$t: exited with $rc and left no input; see $log")
  fi
  for f in "$findings"/*; do
    [ -f "$f" ] || continue
    why=$(grep -aE -m1 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:|what\(\):|FUZZ_CHECK failed' "$log" \
          | sed -E 's/^==[0-9]+==//; s/^ +//' | cut -c1-160)
    found+=("$t: $f  ($why)  reproduce: $BUILD/$t $f")
  done
  rows+=("$(printf '%-14s %12s %9s %7s %+6d %9s' "$t" "$execs" "$rate" "$after" $((after - before)) "$n_find")")
done
run_s=$(( $(date +%s) - run_start ))

echo
printf '%-14s %12s %9s %7s %6s %9s\n' target execs execs/s corpus new findings
for r in "${rows[@]}"; do echo "$r"; done
echo "fuzz: build ${build_s} s, runs ${run_s} s; logs in $BUILD/logs/"
if [ ${#found[@]} -gt 0 ]; then
  echo
  echo "FINDINGS:"
  for f in "${found[@]}"; do echo "  $f"; done
  exit 1
fi
echo "fuzz: no findings"
