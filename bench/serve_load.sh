#!/usr/bin/env bash
# Load on `flopwise serve` (bench/serve_load.py): the demo's dense and MoD models, 1, 4
# and 16 concurrent clients, continuous batching against one request at a time. Trains
# the demo's models first when runs/demo is missing (./scripts/demo.sh --quick).
# Writes bench/results/serve_load.json. With --shape bench: the default config's
# larger shape instead (trained into runs/serve_bench), bench/results/serve_load_bench.json.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh flopwise >/dev/null
[ -f data/brown-bytes/val.txt ] || ./build/flopwise prepare --brown data/brown-src --out data/brown-bytes >/dev/null
if [ "${1:-}" = "--shape" ] && [ "${2:-}" = bench ]; then
  # the default config (d=512, 6 layers, 8 heads, bytes): MoD trained 150 steps so its
  # routers are real (as bench/mod_vs_dense.sh); dense's speed does not depend on its weights
  runs=runs/serve_bench
  for m in dense mod; do
    [ -f $runs/$m/model.safetensors ] && continue
    steps=20 sets=""
    [ $m = mod ] && steps=150 sets="--set mod.enabled=true"
    # shellcheck disable=SC2086
    ./build/flopwise train --data data/brown-bytes --out $runs/$m $sets --set train.steps=$steps --set train.warmup=10 \
      --set train.eval_every=0 --set train.ckpt_every=0 >/dev/null
  done
  /usr/bin/python3 bench/serve_load.py $runs serve_load_bench
else
  [ -f runs/demo/mod/model.safetensors ] || ./scripts/demo.sh --quick >/dev/null
  /usr/bin/python3 bench/serve_load.py
fi
