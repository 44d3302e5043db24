#!/usr/bin/env bash
# Installs what flopwise needs on Debian 12 (only the packages that are missing),
# then configures and builds it in build/. Safe to run again: it does only what
# is left to do.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(g++ cmake make libdnnl-dev nlohmann-json3-dev libcli11-dev libgtest-dev libbenchmark-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)"
