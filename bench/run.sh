#!/usr/bin/env bash
# Runs every benchmark executable built from bench/*.cpp. Usage: bench/run.sh [build-dir]
set -euo pipefail
build="${1:-build}"
for src in "$(dirname "$0")"/*.cpp; do
  name="$(basename "$src" .cpp)"
  echo "== $name"
  "$build/$name"
done
