#!/usr/bin/env bash
# Load on `flopwise serve` (bench/serve_load.py): the demo's dense and MoD models, 1, 4
# and 16 concurrent clients, continuous batching against one request at a time. Trains
# the demo's models first when runs/demo is missing (./scripts/demo.sh --quick).
# Writes bench/results/serve_load.json.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh flopwise >/dev/null
[ -f data/brown-bytes/val.txt ] || ./build/flopwise prepare --brown data/brown-src --out data/brown-bytes >/dev/null
[ -f runs/demo/mod/model.safetensors ] || ./scripts/demo.sh --quick >/dev/null
/usr/bin/python3 bench/serve_load.py
