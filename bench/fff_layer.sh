#!/usr/bin/env bash
# One fast feedforward layer against the dense GELU MLP of the same width (oneDNN),
# side by side in one run each (flopwise bench fff): forward time per token at batch 1
# (32 different tokens, one call each), batched, and forward + backward of the batch
# (training), the speedups, and the FLOP limit.
#   d=768, K=1, D=11 (UltraFastBERT's 4095 neurons), 16384 tokens;
#   d=768, K=1, D=7 and K=16, D=7 likewise;
#   d=256, K=16, D=5, 2048 tokens: the layer of the quick-start shape with model.mlp=fff
#     (and the demo's MoD + FFF model), one micro-batch of 16 x 128;
#   the GPT-3 preset: d=12288, dense width 49152 (4.8 GB fp32) vs FFF depth 15
#     (65535 neurons, 16 per token), batch 1 and 64, forward only (about 12 GB of memory);
#   d=768 K=1 D=11 and the quick-start layer again with --bf16 (bf16 weights on both sides).
# Writes bench/results/fff_layer.json and prints the table.  bench/fff_layer.sh
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh >/dev/null
fw=./build/flopwise
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
runs=("--depth 11 --batch 16384" "--depth 7 --batch 16384" "--trees 16 --depth 7 --batch 16384"
      "--d 256 --trees 16 --depth 5 --batch 2048" "--preset gpt3"
      "--depth 11 --batch 16384 --bf16" "--d 256 --trees 16 --depth 5 --batch 2048 --bf16")
for i in "${!runs[@]}"; do
  # shellcheck disable=SC2086  # the arguments split on purpose
  $fw bench fff ${runs[$i]} --json | tail -1 > "$work/$i.json"
done
/usr/bin/python3 - "$work" "${#runs[@]}" "$(git rev-parse --short HEAD)" <<'PY'
import json, re, subprocess, sys
w, n, commit = sys.argv[1], int(sys.argv[2]), sys.argv[3]
runs = [json.load(open(f"{w}/{i}.json")) for i in range(n)]
cpu = re.search(r"Model name:\s*(.*)", subprocess.run(["lscpu"], capture_output=True, text=True).stdout).group(1).strip()
json.dump({"machine": {"cpu": cpu, "cores": runs[0]["threads"]}, "commit": commit, "runs": runs},
          open("bench/results/fff_layer.json", "w"), indent=2)
print(f"machine: {cpu}, {runs[0]['threads']} threads; commit {commit}")
print("| layer | precision | batch | dense us/token | FFF us/token | speedup | FLOP limit | weights/token dense -> FFF |")
print("|---|---|---:|---:|---:|---:|---:|---:|")
mb = lambda b: f"{b/2**20:.1f} MiB" if b >= 2**20 else f"{b/2**10:.0f} KiB"
for r in runs:
    name = f"d={r['d']}, K={r['trees']}, D={r['depth']} ({r['neurons']} neurons, {r['neurons_per_token']}/token) vs dense {r['dense_width']}"
    p = r["precision"]
    print(f"| {name} | {p} | 1 | {r['dense_us_per_token_batch1']:.1f} | {r['fff_us_per_token_batch1']:.2f} | {r['speedup_batch1']:.0f}x | {r['limit']:.0f}x | {mb(r['dense_weight_bytes_per_token_batch1'])} -> {mb(r['fff_weight_bytes_per_token'])} |")
    print(f"| | {p} | {r['batch']} | {r['dense_us_per_token_batched']:.2f} | {r['fff_us_per_token_batched']:.2f} | {r['speedup_batched']:.1f}x | {r['limit']:.0f}x | |")
    if r["speedup_train"] > 0:
        print(f"| | {p} | {r['batch']}, forward + backward | {r['dense_us_per_token_train']:.2f} | {r['fff_us_per_token_train']:.2f} | {r['speedup_train']:.1f}x | {r['limit']:.0f}x | |")
print("wrote bench/results/fff_layer.json")
PY
