#!/usr/bin/env bash
# Installs what bench_managers measures berth against, only what is missing; no stdin, safe to
# re-run. Usage: scripts/install-bench-deps.sh [BUILD-DIR (default: build)]
#   Debian: supervisor (supervisord, supervisorctl), wrk, hyperfine; node/npm if absent.
#   npm:    pm2, pinned by bench/peers/package-lock.json, into BUILD-DIR/bench-peers (never
#           into the source tree or globally): BUILD-DIR/bench-peers/node_modules/.bin/pm2.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-build}"
PKGS=(supervisor wrk hyperfine)
command -v node >/dev/null || PKGS+=(nodejs)
command -v npm >/dev/null || PKGS+=(npm)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
  # Debian's package starts a system supervisord where an init does it; the bench runs its own.
fi
mkdir -p "$build"
dest="$(cd "$build" && pwd)/bench-peers"
mkdir -p "$dest"
if [[ -x "$dest/node_modules/.bin/pm2" ]] && cmp -s "$here/bench/peers/package-lock.json" "$dest/package-lock.json"; then
  exit 0
fi
cp "$here/bench/peers/package.json" "$here/bench/peers/package-lock.json" "$dest/"
cd "$dest"
npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
# (not `pm2 --version`: any pm2 command starts a daemon in ~/.pm2)
node -e "require(process.argv[1])" "$dest/node_modules/pm2/package.json"
