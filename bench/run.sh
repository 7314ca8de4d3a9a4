#!/usr/bin/env bash
# `make bench`: installs the peers (scripts/install-bench-deps.sh, when present), builds, runs
# every bench that feeds the results table with --json into bench/results/raw/<date>/, then
# bench/report.py writes bench/results/latest.md from those files.
#   bench/run.sh [build-dir]          the table (BENCH_QUICK=1: each bench's --quick, if it has one;
#                                     BENCH_SKIP_DEPS=1: do not run the deps script)
#   bench/run.sh --all [build-dir]    every bench executable of bench/*.cpp, plain output (make bench-all)
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"

if [ "${1:-}" = "--all" ]; then
  build="${2:-build}"
  status=0
  for src in "$here"/*.cpp; do
    name="$(basename "$src" .cpp)"
    echo "== $name"
    "$build/$name" || { echo "== $name failed (exit $?)"; status=1; }
  done
  exit $status
fi

build="${1:-build}"
# The benches of the table, in the order they run; one that is not there yet is skipped.
table_benches=(bench_managers bench_scale bench_event_log bench_packaging bench_workspace bench_canary)

if [ "${BENCH_SKIP_DEPS:-0}" != 1 ]; then
  if [ -f "$root/scripts/install-bench-deps.sh" ]; then
    bash "$root/scripts/install-bench-deps.sh" || { echo "run.sh: scripts/install-bench-deps.sh failed" >&2; exit 1; }
  else
    echo "run.sh: scripts/install-bench-deps.sh not there: peers (pm2, supervisord, wrk) must already be installed"
  fi
fi

targets=(berth bench_tiny_http)
for b in "${table_benches[@]}"; do [ -f "$here/$b.cpp" ] && targets+=("$b"); done
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null || exit 1
cmake --build "$build" -j"$(nproc)" --target "${targets[@]}" || exit 1

stamp="$(date -u +%Y-%m-%dT%H%MZ)"
raw="$here/results/raw/$stamp"
mkdir -p "$raw"
skipped=()
for b in "${table_benches[@]}"; do
  exe="$build/$b"
  if [ ! -x "$exe" ]; then
    echo "== $b: skipped (no bench/$b.cpp in this tree yet)"
    skipped+=("$b: not in this tree yet")
    continue
  fi
  help="$(timeout 20 "$exe" --help 2>&1 || true)"  # bounded: a bench without --help would run
  if ! grep -q -- '--json' <<<"$help"; then
    echo "== $b: skipped (it has no --json FILE yet, so it cannot feed the table)"
    skipped+=("$b: has no --json yet")
    continue
  fi
  args=(--json "$raw/$b.json")
  [ "${BENCH_QUICK:-0}" = 1 ] && grep -q -- '--quick' <<<"$help" && args+=(--quick)
  echo "== $b ${args[*]}"
  "$exe" "${args[@]}" 2>&1 | tee "$raw/$b.log"
  rc=${PIPESTATUS[0]}
  if [ "$rc" != 0 ]; then
    echo "== $b failed (exit $rc); its output is in $raw/$b.log"
    if [ -f "$raw/$b.json" ]; then
      skipped+=("$b: failed (exit $rc) after the rows it wrote (in the table); see raw/$stamp/$b.log")
    else
      skipped+=("$b: failed (exit $rc), see raw/$stamp/$b.log")
    fi
  fi
done

commit="$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)"
# What this run wrote under bench/results/ is not a change of the code measured.
[ -n "$(git -C "$root" status --porcelain -- . ':!bench/results' 2>/dev/null)" ] && commit="$commit (with uncommitted changes)"
command="make bench"
[ "${BENCH_QUICK:-0}" = 1 ] && command="BENCH_QUICK=1 make bench"
report_args=(--raw "$raw" --out "$here/results/latest.md" --commit "$commit" --command "$command")
for s in "${skipped[@]}"; do report_args+=(--skipped "$s"); done
python3 "$here/report.py" "${report_args[@]}" || exit 1
echo "run.sh: bench/results/latest.md (raw JSON and logs in bench/results/raw/$stamp/)"
