#!/usr/bin/env bash
# The container tests' private Docker engine: scripts/dockerd.sh start|stop|status DIR
#
# start: a dockerd of its own under DIR (data, exec root, socket, pidfile, log), the base image
#   berth-test/busybox:1 imported from a busybox-static rootfs (never pulled), a single-node
#   swarm, and Debian's docker-registry on 127.0.0.1:5000 (the next free port when 5000 is taken;
#   DIR/registry-addr says which) holding 127.0.0.1:<port>/berth-test/busybox:1. Idempotent: only
#   what is missing is done. When the engine cannot run here (not root, not installed) it exits 0
#   and writes why into DIR/skip-reason, so the tests SKIP with that reason.
# stop: registry and dockerd by pid (TERM, wait, KILL); nothing of DIR's is left running.
#
# Another dockerd may run on the machine (a developer's): this one never touches the default
# bridge docker0, docker_gwbridge or iptables. It has its own bridge (iptables off: published
# 127.0.0.1 ports go through docker-proxy), its own swarm ports and its own address pools.
set -uo pipefail

cmd=${1:-}; dir=${2:-}
[[ -n $cmd && -n $dir ]] || { echo "usage: $0 start|stop|status DIR" >&2; exit 2; }
mkdir -p "$dir" && dir=$(cd "$dir" && pwd) || exit 2
sock="$dir/docker.sock"
api_version=v1.41
# Interface names are at most 15 characters: one bridge per DIR, named from its path.
tag=$(printf '%s' "$dir" | cksum | awk '{printf "%08x", $1}')
bridge="bdt$tag"; gwbridge="bdt${tag}g"

log() { echo "dockerd.sh: $*" >&2; }

# The Engine API over the socket; every call bounded.
api() {  # METHOD PATH [curl args...]
  local method=$1 path=$2; shift 2
  curl -sS --max-time "${API_TIMEOUT:-20}" --unix-socket "$sock" -X "$method" "$@" "http://localhost/$api_version$path"
}
ping_ok() { [[ -S $sock ]] && [[ $(curl -s --max-time 3 --unix-socket "$sock" http://localhost/_ping 2>/dev/null) == OK ]]; }

pid_alive() {  # PIDFILE [NAME]: the pid in the file runs (and is NAME)
  local f=$1 name=${2:-} pid
  [[ -s $f ]] || return 1
  pid=$(cat "$f"); [[ $pid =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  [[ -z $name ]] || grep -q "$name" "/proc/$pid/comm" 2>/dev/null
}

stop_pid() {  # PIDFILE SECONDS NAME: TERM, wait, KILL (only when the pid is still NAME)
  local f=$1 secs=$2 name=$3 pid i
  [[ -s $f ]] || return 0
  pid=$(cat "$f")
  if pid_alive "$f" "$name"; then
    kill -TERM "$pid" 2>/dev/null
    for ((i = 0; i < secs * 10; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then log "pid $pid ignored TERM; KILL"; kill -KILL "$pid" 2>/dev/null; sleep 0.2; fi
  fi
  rm -f "$f"
}

port_busy() { ss -Htlnu "( sport = :$1 )" 2>/dev/null | grep -q .; }
free_port_from() { local p=$1; while port_busy "$p"; do p=$((p + 1)); done; echo "$p"; }

skip() {  # the engine cannot run here: tests SKIP with this reason
  echo "$*" >"$dir/skip-reason"; log "cannot start the test engine: $*"; exit 0
}

fail() {  # it should have started and did not: tests SKIP with the reason, this step fails
  { echo "$*"; [[ -f $dir/dockerd.log ]] && tail -n 5 "$dir/dockerd.log"; } >"$dir/skip-reason"
  log "$*"; exit 1
}

make_rootfs() {  # busybox-static and the applets the test apps use
  local root="$dir/rootfs" bb a
  bb=$(command -v busybox) || return 1
  rm -rf "$root"; mkdir -p "$root/bin" "$root/etc" "$root/tmp" "$root/www" || return 1
  cp "$bb" "$root/bin/busybox" || return 1
  for a in sh httpd wget cat echo sleep env id ls mkdir kill true false; do ln -s busybox "$root/bin/$a"; done
  chmod 1777 "$root/tmp"
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
}

import_base_image() {
  local code out
  code=$(api GET /images/berth-test/busybox:1/json -o /dev/null -w '%{http_code}')
  [[ $code == 200 ]] && return 0
  make_rootfs || fail "cannot build the busybox rootfs (is busybox-static installed?)"
  # fromSrc=- : the request body is the rootfs as a tar; the answer is a JSON progress stream.
  out=$(tar -C "$dir/rootfs" -cf - . | API_TIMEOUT=120 api POST \
    '/images/create?fromSrc=-&repo=berth-test/busybox&tag=1&changes=CMD%20%5B%22sh%22%5D' \
    -H 'Content-Type: application/x-tar' --data-binary @-) || fail "image import failed: $out"
  grep -q '"error"' <<<"$out" && fail "image import failed: $out"
  log "imported berth-test/busybox:1"
}

init_swarm() {
  local state listen dpp subnet body out
  state=$(api GET /info | grep -o '"LocalNodeState":"[a-z]*"' | cut -d'"' -f4)
  [[ $state == active ]] && return 0
  # docker_gwbridge made by us first, so swarm does not take (or fight over) the default one.
  if [[ $(api GET /networks/docker_gwbridge -o /dev/null -w '%{http_code}') != 200 ]]; then
    subnet=$(cat "$dir/gw-subnet")
    body=$(printf '{"Name":"docker_gwbridge","Driver":"bridge","IPAM":{"Config":[{"Subnet":"%s"}]},"Options":{"com.docker.network.bridge.name":"%s","com.docker.network.bridge.enable_icc":"false","com.docker.network.bridge.enable_ip_masquerade":"false"}}' "$subnet" "$gwbridge")
    out=$(api POST /networks/create -H 'Content-Type: application/json' -d "$body") || fail "docker_gwbridge: $out"
    grep -q '"Id"' <<<"$out" || fail "docker_gwbridge: $out"
  fi
  listen=$(free_port_from 2377); dpp=$(free_port_from 4789)
  body=$(printf '{"ListenAddr":"127.0.0.1:%s","AdvertiseAddr":"127.0.0.1:%s","DataPathPort":%s,"DefaultAddrPool":["10.216.0.0/16"],"SubnetSize":24}' "$listen" "$listen" "$dpp")
  out=$(API_TIMEOUT=60 api POST /swarm/init -H 'Content-Type: application/json' -d "$body") || fail "swarm init: $out"
  grep -q '"message"' <<<"$out" && fail "swarm init: $out"
  log "single-node swarm on 127.0.0.1:$listen"
}

start_registry() {
  local port addr i
  if pid_alive "$dir/registry.pid" registry && [[ -s $dir/registry-addr ]] &&
     curl -s --max-time 3 -o /dev/null "http://$(cat "$dir/registry-addr")/v2/"; then
    return 0
  fi
  stop_pid "$dir/registry.pid" 5 docker-registry
  command -v docker-registry >/dev/null || fail "docker-registry is not installed"
  port=$(free_port_from 5000); addr="127.0.0.1:$port"
  mkdir -p "$dir/registry"
  printf 'version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n' \
    "$dir/registry" "$addr" >"$dir/registry.yml"
  setsid docker-registry serve "$dir/registry.yml" </dev/null >>"$dir/registry.log" 2>&1 &
  echo $! >"$dir/registry.pid"
  for ((i = 0; i < 100; i++)); do
    curl -s --max-time 1 -o /dev/null "http://$addr/v2/" && break
    pid_alive "$dir/registry.pid" || fail "docker-registry exited: $(tail -n 3 "$dir/registry.log")"
    sleep 0.1
  done
  curl -s --max-time 1 -o /dev/null "http://$addr/v2/" || fail "docker-registry does not answer on $addr"
  echo "$addr" >"$dir/registry-addr"
  # The base image in the registry too, for swarm nodes that pull (127.0.0.0/8 is insecure-allowed).
  API_TIMEOUT=10 api POST "/images/berth-test/busybox:1/tag?repo=$addr/berth-test/busybox&tag=1" >/dev/null
  out=$(API_TIMEOUT=120 api POST "/images/$addr/berth-test/busybox/push?tag=1" -H 'X-Registry-Auth: e30=')
  grep -q '"error"' <<<"$out" && fail "push of the base image to $addr failed: $out"
  log "registry on $addr"
}

pick_subnet() {  # FILE BASE(10.x): a /24 no interface on the host uses, remembered in FILE
  local f=$1 base=$2 n
  [[ -s $f ]] && { cat "$f"; return; }
  for ((n = $((16#${tag:0:2})); n < 256 + $((16#${tag:0:2})); n++)); do
    if ! ip -4 addr | grep -q "inet $base.$((n % 256))\."; then echo "$base.$((n % 256)).0/24" | tee "$f"; return; fi
  done
}

setup_bridge() {
  local subnet
  subnet=$(pick_subnet "$dir/bridge-subnet" 10.214)
  pick_subnet "$dir/gw-subnet" 10.215 >/dev/null
  if ! ip link show "$bridge" >/dev/null 2>&1; then
    ip link add name "$bridge" type bridge || return 1
    ip addr add "${subnet%.0/24}.1/24" dev "$bridge" || return 1
  fi
  # A fixed address, as Docker gives its own bridges: otherwise the bridge takes the lowest
  # address of its ports, which changes as containers come and go, and connections to the
  # running containers stall while neighbours relearn it (a deploy dropped requests).
  ip link set dev "$bridge" address "02:42:${tag:0:2}:${tag:2:2}:${tag:4:2}:${tag:6:2}" || return 1
  ip link set "$bridge" up
}

start() {
  rm -f "$dir/skip-reason"
  if ping_ok; then
    log "engine already answers on $sock"
  else
    [[ $(id -u) -eq 0 ]] || skip "not root: a private dockerd needs root here"
    command -v dockerd >/dev/null || skip "dockerd is not installed (Debian docker.io)"
    command -v curl >/dev/null || skip "curl is not installed"
    stop_pid "$dir/dockerd.pid" 20 dockerd  # alive but deaf
    setup_bridge || fail "cannot make the bridge $bridge"
    mkdir -p "$dir/data" "$dir/exec"
    echo '{}' >"$dir/daemon.json"  # not /etc/docker/daemon.json: nothing of the host's config
    setsid dockerd --config-file "$dir/daemon.json" --data-root "$dir/data" --exec-root "$dir/exec" \
      --pidfile "$dir/dockerd.pid" -H "unix://$sock" --bridge "$bridge" --iptables=false \
      --ip-masq=false --default-address-pool "base=10.217.0.0/16,size=24" \
      </dev/null >>"$dir/dockerd.log" 2>&1 &
    local pid=$! i
    for ((i = 0; i < 300; i++)); do  # ~30 s
      ping_ok && break
      kill -0 "$pid" 2>/dev/null || fail "dockerd exited while starting (see $dir/dockerd.log)"
      sleep 0.1
    done
    ping_ok || { kill -TERM "$pid" 2>/dev/null; fail "dockerd did not answer /_ping within 30 s"; }
    log "dockerd $pid answers on $sock"
  fi
  import_base_image
  init_swarm
  start_registry
  echo "unix://$sock"
}

stop() {
  stop_pid "$dir/registry.pid" 10 docker-registry
  stop_pid "$dir/dockerd.pid" 30 dockerd
  # A killed dockerd leaves its containerd and shims: end those of this DIR only, by pid.
  local p
  for p in /proc/[0-9]*; do
    grep -qa -- "$dir/exec" "$p/cmdline" 2>/dev/null || continue
    kill -KILL "${p#/proc/}" 2>/dev/null && log "killed leftover ${p#/proc/} ($(cat "$p/comm" 2>/dev/null))"
  done
  # ... and the containers' own processes (a shim's death does not end them): those in the
  # cgroup of one of this engine's containers.
  local c
  for c in "$dir"/data/containers/*/; do
    c=$(basename "$c"); [[ ${#c} == 64 ]] || continue
    for p in /proc/[0-9]*; do
      grep -q "/docker/$c" "$p/cgroup" 2>/dev/null && kill -KILL "${p#/proc/}" 2>/dev/null &&
        log "killed leftover ${p#/proc/} of container ${c:0:12}"
    done
  done
  # A killed dockerd leaves its mounts (overlays, the data root on itself): a later rm -rf of the
  # build dir would meet EBUSY. Only once nothing answers on the socket any more.
  if ! ping_ok; then
    awk -v d="$dir/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r |
      while read -r m; do umount -l "$m" 2>/dev/null && log "unmounted leftover $m"; done
  fi
  ip link del "$gwbridge" 2>/dev/null
  ip link del "$bridge" 2>/dev/null
  rm -f "$sock"
  return 0
}

status() {
  if ping_ok; then echo "dockerd: up on $sock"; else echo "dockerd: down"; fi
  if pid_alive "$dir/registry.pid" registry; then echo "registry: up on $(cat "$dir/registry-addr")"; else echo "registry: down"; fi
  [[ -s $dir/skip-reason ]] && echo "skip-reason: $(cat "$dir/skip-reason")"
  ping_ok
}

case $cmd in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status DIR" >&2; exit 2 ;;
esac
