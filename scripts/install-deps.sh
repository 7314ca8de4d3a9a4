#!/usr/bin/env bash
# Installs the Debian packages berth needs, only those missing. Non-interactive; safe to re-run.
set -euo pipefail
PKGS=(build-essential cmake pkg-config git
      libcaf-dev librocksdb-dev libcpp-httplib-dev libspdlog-dev libfmt-dev
      nlohmann-json3-dev catch2 libcli11-dev libssl-dev
      python3 curl caddy bubblewrap
      clang libclang-rt-14-dev)  # fuzz/: clang++ and libclang_rt.fuzzer (-fsanitize=fuzzer)
PKGS+=(openssl)  # tests: the self-signed certificate of the HTTPS API test
PKGS+=(haproxy)  # the router (runtime/proxy/haproxy): route flips through its runtime API, no reload
# The docker and swarm runtimes: libcurl (Engine API), libarchive (build contexts); the tests
# start a private dockerd, import a busybox rootfs as their base image, and push to a local
# registry (scripts/dockerd.sh).
PKGS+=(libcurl4-openssl-dev libarchive-dev docker.io busybox-static docker-registry)
# Operator surfaces: TOML manifests (toml++), `promtool check metrics` in the metrics test
# (prometheus), the dashboard's browser test (chromium, driven by playwright-core from npm).
# A nodejs that ships its own npm (NodeSource's) conflicts with Debian's npm package: ask for
# the packages only when the commands are missing.
PKGS+=(libtomlplusplus-dev prometheus chromium)
PKGS+=(zlib1g-dev)  # workspace uploads: the gzip layer decoded with its CRC checked (runtime/workspace/gunzip_reader)
command -v node >/dev/null || PKGS+=(nodejs)
command -v npm >/dev/null || PKGS+=(npm)
# HTTPS for sites: the TLS front tests get certificates from pebble, Let's Encrypt's ACME test
# server, on loopback (scripts/pebble.sh).
PKGS+=(pebble)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
echo "installing: ${missing[*]}"
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
