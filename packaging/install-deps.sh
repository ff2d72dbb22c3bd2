#!/usr/bin/env bash
# Installs the Debian 12 packages Tidewatch needs to build, run and test.
# Only what is missing is installed; run as root or with sudo available.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config ccache git file
  qt6-base-dev qt6-base-dev-tools qt6-base-private-dev qt6-httpserver-dev qt6-websockets-dev
  qt6-svg-dev qt6-qpa-plugins qtkeychain-qt6-dev libgl-dev
  libbson-dev libmongoc-dev libsqlite3-dev sqlite3 libpq-dev libzstd-dev libsimdjson-dev
  fonts-dejavu-core curl xvfb xauth clang-format
  clang libclang-rt-14-dev
  postgresql-15 postgresql-client-15
  nats-server libnats-dev
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "tidewatch: all build dependencies are present"
  exit 0
fi

echo "tidewatch: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "tidewatch: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
$SUDO apt-get install -y --no-install-recommends "${missing[@]}"
