#!/usr/bin/env bash
# Docker deploy figures: N deploys of the container test site (tests/apps/container/site, its own
# Dockerfile) through a real `berth serve`, each a new version, and what each deployment's
# resources say: image_ms (image build), candidate_boot_ms (container start until healthy) and
# gap_ms (the stable port's hand-over; direct switch mode). Prints each and the medians.
# Usage: bench/docker_deploys.sh [build-dir] [deploys] ; SWITCH_MODE=proxy for Caddy.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$root/build}" && pwd); n=${2:-7}; mode=${SWITCH_MODE:-direct}
engine_dir="$build/dockerd"
work=$(mktemp -d /tmp/berth-dt-bench.XXXXXX)
token=dt-bench-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
api() { curl -sS --max-time 30 -H "Authorization: Bearer $token" "$@"; }

started_engine=0
if ! "$root/scripts/dockerd.sh" status "$engine_dir" >/dev/null 2>&1; then
  "$root/scripts/dockerd.sh" start "$engine_dir" >/dev/null; started_engine=1
fi
cleanup() {
  api -X DELETE "http://127.0.0.1:$port/api/projects/dt-bench" >/dev/null 2>&1 || true
  [[ -n ${berth_pid:-} ]] && kill "$berth_pid" 2>/dev/null && wait "$berth_pid" 2>/dev/null
  # Caddy outlives berth by design (the next berth adopts it): end this run's, by pid.
  for p in /proc/[0-9]*; do grep -qa -- "$work/" "$p/cmdline" 2>/dev/null && kill "${p#/proc/}" 2>/dev/null; done
  [[ $started_engine == 1 ]] && "$root/scripts/dockerd.sh" stop "$engine_dir" >/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

cp -r "$root/tests/apps/container/site" "$work/src"
"$build/berth" serve --listen "127.0.0.1:$port" --data "$work/data" --token "$token" --switch-mode "$mode" \
  --docker-host "unix://$engine_dir/docker.sock" >"$work/server.log" 2>&1 &
berth_pid=$!
for _ in $(seq 100); do api -o /dev/null "http://127.0.0.1:$port/health" 2>/dev/null && break; sleep 0.1; done
api -o /dev/null -X POST "http://127.0.0.1:$port/api/projects" -d "{\"name\":\"dt-bench\",\"runtime\":\"docker\",
  \"source\":{\"path\":\"$work/src\"},\"production\":{\"health\":{\"path\":\"/version\",\"interval_ms\":20,
  \"timeout_s\":20,\"min_healthy_s\":0}}}"

printf '%-8s %10s %18s %8s %10s\n' deploy image_ms candidate_boot_ms gap_ms total_ms
rows=()
for i in $(seq "$n"); do
  echo "v$i" >"$work/src/www/version"
  id=$(api -X POST "http://127.0.0.1:$port/api/projects/dt-bench/deployments" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  for _ in $(seq 600); do
    d=$(api "http://127.0.0.1:$port/api/deployments/$id")
    st=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])' <<<"$d")
    [[ $st == completed || $st == failed || $st == cancelled ]] && break
    sleep 0.1
  done
  [[ $st == completed ]] || { echo "deploy $i: $st" >&2; exit 1; }
  row=$(python3 -c 'import json,sys
d=json.load(sys.stdin); r=d["resources"]
print(r.get("image_ms",0), r.get("candidate_boot_ms",0), r.get("gap_ms",0), round(1000*(d.get("duration_s") or 0)))' <<<"$d")
  rows+=("$row")
  printf '%-8s %10s %18s %8s %10s\n' "v$i" $row
done
printf '%s\n' "${rows[@]}" | python3 -c 'import sys,statistics as s
cols=list(zip(*[map(float,l.split()) for l in sys.stdin if l.strip()]))
print("%-8s %10.0f %18.0f %8.0f %10.0f" % ("median", *[s.median(c) for c in cols]))'
