#!/usr/bin/env bash
# A private ACME CA for the HTTPS tests:
#   scripts/pebble.sh start DIR HTTP_PORT HTTPS_PORT [VALIDITY_S] | stop DIR
#
# start: pebble-challtestsrv as pebble's DNS (every A query answers 127.0.0.1, no AAAA, its
#   challenge servers off) and pebble (Debian 2.4, Let's Encrypt's ACME test server) whose
#   validation connects to 127.0.0.1:HTTP_PORT (http-01) and :HTTPS_PORT (tls-alpn-01), the
#   ports of the sites' TLS front. Certificates last VALIDITY_S seconds (default: pebble's
#   5 years; a short one lets a test watch a renewal). pebble's own HTTPS certificate (CN/SAN localhost, 127.0.0.1)
#   is made here with openssl. Once the directory answers it prints
#     directory=https://127.0.0.1:<port>/dir
#     ca=<DIR>/pebble-cert.pem       (trust it for pebble's own HTTPS: the ACME client's "CA root")
#     root=<DIR>/root.pem            (pebble's issuing root: what sites' certificates chain to)
#   root.pem is fetched from pebble's management port (/roots/0): pebble makes a new root at
#   every start. When pebble is not installed it exits 0 having written why into
#   DIR/skip-reason (tests skip with it); any other failure exits 1 (and writes skip-reason).
# stop: both processes by pid (KILL); nothing of DIR's is left running.
#
# What pebble 2.4 needs here (found by trying): its own cert/key files (the Debian package ships
# none), a DNS server (-dnsserver; otherwise it asks the host's resolver, which knows no test
# names), PEBBLE_VA_NOSLEEP=1 (else every validation waits up to 15 s), PEBBLE_WFE_NONCEREJECT=0
# (else 5 % of nonces are refused on purpose, which clients retry but which makes runs slower).
# challtestsrv binds its management API (default :8055) and every challenge server
# (:5001-5003, :8053) unless told otherwise: all but DNS and management are turned off, and
# those two take free loopback ports.
set -uo pipefail

cmd=${1:-}; dir=${2:-}
[[ -n $cmd && -n $dir ]] || { echo "usage: $0 start DIR HTTP_PORT HTTPS_PORT | stop DIR" >&2; exit 2; }
mkdir -p "$dir" && dir=$(cd "$dir" && pwd) || exit 2

log() { echo "pebble.sh: $*" >&2; }

pid_alive() {  # PIDFILE NAME: the pid in the file runs and is NAME
  local f=$1 name=$2 pid
  [[ -s $f ]] || return 1
  pid=$(cat "$f"); [[ $pid =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  grep -qx "$name" "/proc/$pid/comm" 2>/dev/null
}

# Alive and not a zombie: a killed daemon stays a zombie until PID 1 (its parent since the start
# script exited) reaps it, which can take seconds here.
running() { kill -0 "$1" 2>/dev/null && [[ $(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) != Z ]]; }

stop_pid() {  # PIDFILE NAME: KILL (only when the pid is still NAME). pebble keeps all its state
  # in memory, so there is nothing a graceful stop would save (and each takes ~2 s on TERM).
  local f=$1 name=$2 pid i
  [[ -s $f ]] || return 0
  pid=$(cat "$f")
  # Right after start the pid can still be the bash that is about to exec NAME: give it 2 s.
  for ((i = 0; i < 20; i++)); do
    kill -0 "$pid" 2>/dev/null && [[ $(cat "/proc/$pid/comm" 2>/dev/null) == bash ]] || break
    sleep 0.1
  done
  if pid_alive "$f" "$name"; then
    kill -KILL "$pid" 2>/dev/null
    for ((i = 0; i < 50; i++)); do running "$pid" || break; sleep 0.05; done
  fi
  rm -f "$f"
}

skip() { echo "$*" >"$dir/skip-reason"; log "$*"; exit 0; }
fail() { echo "$*" >"$dir/skip-reason"; log "$*"; stop; exit 1; }

# N loopback ports free at once (all bound together, so they differ), one per line, none of
# the EXCLUDED ones (the sites' ports: free now, but Caddy binds them later).
free_ports() {  # N EXCLUDED...
  python3 - "$@" <<'EOF'
import socket, sys
n, excluded = int(sys.argv[1]), set(int(p) for p in sys.argv[2:])
socks, picked = [], []
while len(picked) < n:
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
    if s.getsockname()[1] not in excluded: picked.append(s.getsockname()[1])
print("\n".join(str(p) for p in picked))
EOF
}

start() {
  local http_port=${3:-} https_port=${4:-} validity=${5:-157766400} ports acme mgmt dns cmgmt i
  [[ $http_port =~ ^[0-9]+$ && $https_port =~ ^[0-9]+$ && $validity =~ ^[0-9]+$ ]] || { echo "usage: $0 start DIR HTTP_PORT HTTPS_PORT [VALIDITY_S]" >&2; exit 2; }
  rm -f "$dir/skip-reason" "$dir/root.pem"
  command -v pebble >/dev/null && command -v pebble-challtestsrv >/dev/null ||
    skip "pebble is not installed (Debian pebble)"
  command -v openssl >/dev/null || skip "openssl is not installed"
  command -v curl >/dev/null || skip "curl is not installed"
  stop  # a previous run's leftovers in DIR

  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 7 \
    -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -keyout "$dir/pebble-key.pem" -out "$dir/pebble-cert.pem" 2>"$dir/openssl.log" ||
    fail "openssl could not make pebble's certificate: $(tail -n 2 "$dir/openssl.log")"

  mapfile -t ports < <(free_ports 4 "$http_port" "$https_port")
  acme=${ports[0]}; mgmt=${ports[1]}; dns=${ports[2]}; cmgmt=${ports[3]}

  setsid pebble-challtestsrv -defaultIPv4 127.0.0.1 -defaultIPv6 "" -dns01 "127.0.0.1:$dns" \
    -http01 "" -https01 "" -tlsalpn01 "" -management "127.0.0.1:$cmgmt" \
    </dev/null >>"$dir/challtestsrv.log" 2>&1 &
  echo $! >"$dir/challtestsrv.pid"

  cat >"$dir/pebble.json" <<EOF
{"pebble": {
  "listenAddress": "127.0.0.1:$acme",
  "managementListenAddress": "127.0.0.1:$mgmt",
  "certificate": "$dir/pebble-cert.pem",
  "privateKey": "$dir/pebble-key.pem",
  "httpPort": $http_port,
  "tlsPort": $https_port,
  "ocspResponderURL": "",
  "externalAccountBindingRequired": false,
  "certificateValidityPeriod": $validity
}}
EOF
  PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0 setsid pebble -config "$dir/pebble.json" \
    -dnsserver "127.0.0.1:$dns" </dev/null >>"$dir/pebble.log" 2>&1 &
  echo $! >"$dir/pebble.pid"

  for ((i = 0; i < 200; i++)); do  # ~20 s
    curl -sf --max-time 1 --cacert "$dir/pebble-cert.pem" -o /dev/null "https://127.0.0.1:$acme/dir" && break
    # Alive, not "is pebble": right after the fork the pid is still a bash about to exec it.
    kill -0 "$(cat "$dir/pebble.pid")" 2>/dev/null || fail "pebble exited: $(tail -n 3 "$dir/pebble.log")"
    kill -0 "$(cat "$dir/challtestsrv.pid")" 2>/dev/null || fail "pebble-challtestsrv exited: $(tail -n 3 "$dir/challtestsrv.log")"
    sleep 0.1
  done
  curl -sf --max-time 1 --cacert "$dir/pebble-cert.pem" -o /dev/null "https://127.0.0.1:$acme/dir" ||
    fail "pebble does not answer on 127.0.0.1:$acme"
  curl -sf --max-time 5 --cacert "$dir/pebble-cert.pem" -o "$dir/root.pem.tmp" "https://127.0.0.1:$mgmt/roots/0" &&
    mv "$dir/root.pem.tmp" "$dir/root.pem" || fail "cannot fetch pebble's root from 127.0.0.1:$mgmt/roots/0"
  echo "directory=https://127.0.0.1:$acme/dir"
  echo "ca=$dir/pebble-cert.pem"
  echo "root=$dir/root.pem"
}

stop() {
  stop_pid "$dir/pebble.pid" pebble
  stop_pid "$dir/challtestsrv.pid" pebble-challtes
  return 0
}

case $cmd in
  start) start "$@" ;;
  stop) stop ;;
  *) echo "usage: $0 start DIR HTTP_PORT HTTPS_PORT | stop DIR" >&2; exit 2 ;;
esac
