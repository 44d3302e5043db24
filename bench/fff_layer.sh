#!/usr/bin/env bash
# One fast feedforward layer against the dense GELU MLP of the same width (oneDNN),
# side by side in one run (flopwise bench fff): forward time per token at batch 1
# (32 different tokens, one call each) and batched, the speedup, and the FLOP limit.
#   d=768, K=1, D=11 (UltraFastBERT's 4095 neurons) at batch 1 and 16384 tokens;
#   d=768, K=1, D=7 and K=16, D=7 likewise;
#   the GPT-3 preset: d=12288, dense width 49152 (4.8 GB fp32) vs FFF depth 15
#   (65535 neurons, 16 per token), batch 1 and 64 (about 12 GB of memory).
# Writes bench/results/fff_layer.json and prints the tables.  bench/fff_layer.sh
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh >/dev/null
fw=./build/flopwise
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
i=0
for args in "--depth 11" "--depth 7" "--trees 16 --depth 7" "--preset gpt3"; do  # gpt3: batch 64
  i=$((i + 1))
  $fw bench fff $args --batch 16384 --json | tail -1 > "$work/$i.json"
done
/usr/bin/python3 - "$work" "$(git rev-parse --short HEAD)" <<'PY'
import json, re, subprocess, sys
w, commit = sys.argv[1], sys.argv[2]
runs = [json.load(open(f"{w}/{i}.json")) for i in (1, 2, 3, 4)]
cpu = re.search(r"Model name:\s*(.*)", subprocess.run(["lscpu"], capture_output=True, text=True).stdout).group(1).strip()
json.dump({"machine": {"cpu": cpu, "cores": runs[0]["threads"]}, "commit": commit, "runs": runs},
          open("bench/results/fff_layer.json", "w"), indent=2)
print(f"machine: {cpu}, {runs[0]['threads']} threads; commit {commit}")
print("| layer | batch | dense us/token | FFF us/token | speedup | FLOP limit | weights/token dense -> FFF |")
print("|---|---:|---:|---:|---:|---:|---:|")
for r in runs:
    name = f"d={r['d']}, K={r['trees']}, D={r['depth']} ({r['neurons']} neurons, {r['neurons_per_token']}/token) vs dense {r['dense_width']}"
    mb = lambda b: f"{b/2**20:.1f} MiB" if b >= 2**20 else f"{b/2**10:.0f} KiB"
    print(f"| {name} | 1 | {r['dense_us_per_token_batch1']:.1f} | {r['fff_us_per_token_batch1']:.2f} | {r['speedup_batch1']:.0f}x | {r['limit']:.0f}x | {mb(r['dense_weight_bytes_per_token_batch1'])} -> {mb(r['fff_weight_bytes_per_token'])} |")
    print(f"| | {r['batch']} | {r['dense_us_per_token_batched']:.2f} | {r['fff_us_per_token_batched']:.2f} | {r['speedup_batched']:.1f}x | {r['limit']:.0f}x | |")
print("wrote bench/results/fff_layer.json")
PY
