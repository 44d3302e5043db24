#!/usr/bin/env bash
# Load on `flopwise serve` (bench/serve_load.py): the demo's dense and MoD models, 1, 4
# and 16 concurrent clients, continuous batching against one request at a time. Trains
# the demo's models first when runs/demo is missing (./scripts/demo.sh --quick).
# Writes bench/results/serve_load.json. With --shape bench: the default config's
# larger shape instead (trained into runs/serve_bench), bench/results/serve_load_bench.json.
# With --precision fp32|bf16: the servers' matrix products (default: as each run trained),
# the result file named with _fp32 or _bf16. With --kv-cache bf16: the servers' KV caches
# in bf16 (default fp32), the result file named with _kvbf16 as well.
#   bench/serve_load.sh [--shape bench] [--precision fp32|bf16] [--kv-cache fp32|bf16]
set -euo pipefail
cd "$(dirname "$0")/.."
shape=demo precision=checkpoint kv=fp32
while [ $# -gt 0 ]; do
  [ $# -ge 2 ] || { echo "serve_load.sh: '$1' needs a value" >&2; exit 2; }
  case "$1" in
    --shape) shape=$2; shift 2 ;;
    --precision) precision=$2; shift 2 ;;
    --kv-cache) kv=$2; shift 2 ;;
    *) echo "serve_load.sh: unknown argument '$1' (--shape bench, --precision fp32|bf16, --kv-cache fp32|bf16)" >&2
       exit 2 ;;
  esac
done
case "$shape" in demo|bench) ;; *) echo "serve_load.sh: --shape '$shape' is not 'bench' (or the default, demo)" >&2; exit 2 ;; esac
case "$precision" in checkpoint|fp32|bf16) ;; *) echo "serve_load.sh: --precision '$precision' is not fp32 or bf16" >&2; exit 2 ;; esac
case "$kv" in fp32|bf16) ;; *) echo "serve_load.sh: --kv-cache '$kv' is not fp32 or bf16" >&2; exit 2 ;; esac
suffix=""
[ "$precision" != checkpoint ] && suffix="_$precision"
[ "$kv" = bf16 ] && suffix="${suffix}_kvbf16"
./scripts/setup.sh flopwise >/dev/null
[ -f data/brown-bytes/val.txt ] || ./build/flopwise prepare --brown data/brown-src --out data/brown-bytes >/dev/null
if [ "$shape" = bench ]; then
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
  /usr/bin/python3 bench/serve_load.py $runs "serve_load_bench$suffix" "$precision" "$kv"
else
  [ -f runs/demo/mod/model.safetensors ] || ./scripts/demo.sh --quick >/dev/null
  /usr/bin/python3 bench/serve_load.py runs/demo "serve_load$suffix" "$precision" "$kv"
fi
