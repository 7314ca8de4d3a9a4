#!/usr/bin/env bash
# Installs the browser test's npm packages (package.json, pinned by package-lock.json) into
# the build directory given as $1, never into the source tree. Run by ctest as the fixture
# "web: npm install"; a second run with the same lock file installs nothing.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dest="$1"
mkdir -p "$dest"
if [[ -d "$dest/node_modules/playwright-core" ]] && cmp -s "$here/package-lock.json" "$dest/package-lock.json"; then
  echo "web test packages already installed in $dest"
  exit 0
fi
cp "$here/package.json" "$here/package-lock.json" "$dest/"
cd "$dest"
npm ci --no-audit --no-fund --ignore-scripts
