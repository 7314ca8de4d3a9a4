#!/usr/bin/env bash
# Actor messages per deploy: every message CAF puts in a mailbox (caf::scheduled_actor::enqueue
# and caf::blocking_actor::enqueue, counted by gdb breakpoints that never stop) while a real
# `berth serve` runs N deploys of the tiny app in direct mode. The same instrument works on any
# berth binary, so before/after figures compare like with like.
#
#   bench/message_count.sh [BERTH] [TINY_HTTP] [N]     (defaults: build/berth build/bench_tiny_http 10)
#
# Each deploy is waited for without asking berth (the stable port is polled until it serves the
# new version, then the deployment is read once); the messages of those reads and the messages
# of an idle berth over the same time are measured separately and subtracted.
set -euo pipefail
BERTH=$(realpath "${1:-build/berth}")
TINY=$(realpath "${2:-build/bench_tiny_http}")
N=${3:-10}
command -v gdb >/dev/null || { echo "needs gdb" >&2; exit 2; }
WORK=$(mktemp -d /tmp/berth-msgcount-XXXXXX)
BERTH_PID=""
GDB_PID=""
cleanup() {
  [ -n "$GDB_PID" ] && kill -9 "$GDB_PID" 2>/dev/null || true
  [ -n "$BERTH_PID" ] && kill -9 "$BERTH_PID" 2>/dev/null || true
  for d in /proc/[0-9]*; do
    case $(readlink "$d/cwd" 2>/dev/null || true) in "$WORK"*) kill -9 "${d#/proc/}" 2>/dev/null || true;; esac
  done
  rm -rf "$WORK"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
PORT=$(free_port)
API=http://127.0.0.1:$PORT
export BERTH_TOKEN=message-count-token-0123456789
H="Authorization: Bearer $BERTH_TOKEN"
LO=$((20000 + RANDOM % 20000))
"$BERTH" serve --listen "127.0.0.1:$PORT" --data "$WORK/data" --switch-mode direct --stop-grace-ms 1000 \
  --production-ports "$LO-$((LO + 99))" --preview-ports "$((LO + 100))-$((LO + 299))" >"$WORK/berth.log" 2>&1 &
BERTH_PID=$!
for _ in $(seq 200); do curl -sf "$API/health" >/dev/null && break; sleep 0.05; done

mkdir -p "$WORK/src"
cp "$TINY" "$WORK/src/tiny_http"
echo 0 > "$WORK/src/VERSION"
curl -sf -H "$H" -XPOST "$API/api/projects" -d "$(cat <<EOF
{"name":"tiny","source":{"path":"$WORK/src"},
 "build":{"command":["install","-D","-m","644","-t","dist","VERSION"],"artifacts":["dist","tiny_http"]},
 "production":{"command":["./tiny_http","dist/VERSION"],"health":{"path":"/health","interval_ms":10,"timeout_s":10}}}
EOF
)" >/dev/null
STABLE=$(curl -sf -H "$H" "$API/api/projects/tiny" | python3 -c 'import json,sys;print(json.load(sys.stdin)["ports"]["production"])')

deploy() {  # version
  echo "$1" > "$WORK/src/VERSION"
  local id
  id=$(curl -sf -H "$H" -XPOST "$API/api/projects/tiny/deployments" -d '' | python3 -c 'import json,sys;print(json.load(sys.stdin)["id"])')
  for _ in $(seq 2000); do
    [ "$(curl -s "http://127.0.0.1:$STABLE/" 2>/dev/null)" = "release $1" ] && break
    sleep 0.005
  done
  sleep 0.3  # draining and the outcome
  curl -sf -H "$H" "$API/api/deployments/$id" | python3 -c 'import json,sys;d=json.load(sys.stdin);assert d["status"]=="completed",(d["error"],d["log"][-5:])'
}
deploy warmup

counting() {  # starts gdb counting enqueues in berth; sets GDB_PID
  gdb -p "$BERTH_PID" -batch -ex 'set pagination off' -ex 'handle SIGUSR1 stop nopass' \
    -ex 'break caf::scheduled_actor::enqueue' -ex 'break caf::blocking_actor::enqueue' \
    -ex 'ignore 1 2000000000' -ex 'ignore 2 2000000000' -ex 'continue' -ex 'info breakpoints' -ex 'detach' \
    >"$WORK/gdb.out" 2>&1 &
  GDB_PID=$!
  # Attached once berth has a tracer; then the breakpoints are set and it runs on.
  for _ in $(seq 400); do
    if [ "$(awk '/^TracerPid/ {print $2}' "/proc/$BERTH_PID/status")" != "0" ]; then sleep 2; return; fi
    sleep 0.05
  done
  echo "gdb did not attach" >&2; exit 1
}
counted() {  # stops counting (gdb takes a SIGUSR1 to berth without passing it on); sets COUNT
  kill -USR1 "$BERTH_PID"
  wait "$GDB_PID" || true
  GDB_PID=""
  COUNT=$(grep -o "already hit [0-9]* time" "$WORK/gdb.out" | awk '{s += $3} END {print s + 0}')
}

counting; t0=$(date +%s.%N)
for i in $(seq "$N"); do deploy "v$i"; done
t1=$(date +%s.%N); counted; deploys=$COUNT
counting
for i in $(seq "$N"); do curl -sf -H "$H" "$API/api/deployments/tiny.1" >/dev/null || true; done
counted; reads=$COUNT
counting; sleep "$(python3 -c "print($t1 - $t0)")"; counted; idle=$COUNT
python3 - "$deploys" "$reads" "$idle" "$N" "$BERTH" <<'PY'
import json, sys
deploys, reads, idle, n, berth = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
per = (deploys - reads - idle) / n
print(json.dumps({"berth": berth, "deploys": n, "enqueues_during_deploys": deploys, "enqueues_of_reads": reads,
                  "enqueues_idle_same_time": idle, "messages_per_deploy": round(per, 1)}))
PY
