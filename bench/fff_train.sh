#!/usr/bin/env bash
# Training speed of fast feedforward models against their dense twins, in one run
# (flopwise bench train, random tokens): model FLOPs per second (MFU) of
#   the quick-start shape (configs/quickstart.json: d=256, 4 layers, 16 x 128 tokens)
#     dense, and with model.mlp=fff (16 trees of depth 5);
#   the demo's models (the same shape with a 2048-piece vocabulary): dense, and
#     MoD + FFF (every 2nd block routed at 12.5%, 16 trees of depth 5);
# each in fp32 and with train.matmul_bf16=true, and the ratio of each FFF model's
# FLOP rate (tokens/s x training FLOPs/token) to its dense twin's. Each FFF model's
# twin without an MLP (model.mlp=none) gives its ceiling: its time per token plus the
# FFF layers' FLOPs at the machine's measured matrix-product peak is the least an FFF
# model of that shape can take, so its FLOP rate over that time bounds what any FFF
# kernel could reach. The machine is shared
# and its speed drifts by 10-20% from minute to minute, so the eight configurations run
# in turn three times and each keeps its fastest run. Writes bench/results/fff_train.json
# and prints a table.   bench/fff_train.sh [--steps N]
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh >/dev/null
steps=10
[ "${1:-}" = "--steps" ] && steps=$2
fw=./build/flopwise
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fff="--set model.mlp=fff --set fff.trees=16 --set fff.depth=5"
names=(quickstart_dense quickstart_fff quickstart_none demo_dense demo_mod_fff demo_mod_none)
sets=("" "$fff" "--set model.mlp=none" "--set model.vocab_size=2048" "--set model.vocab_size=2048 --set mod.enabled=true $fff"
      "--set model.vocab_size=2048 --set mod.enabled=true --set model.mlp=none")
for round in 1 2 3; do
  for precision in fp32 bf16; do
    bf16=false
    [ "$precision" = bf16 ] && bf16=true
    for i in "${!names[@]}"; do
      # shellcheck disable=SC2086  # the --set arguments split on purpose
      $fw bench train --config configs/quickstart.json ${sets[$i]} --set train.matmul_bf16=$bf16 \
        --steps "$steps" --warmup 2 --json | tail -1 > "$work/${names[$i]}_${precision}_$round.json"
    done
  done
done
/usr/bin/python3 - "$work" "$(git rev-parse --short HEAD)" "$steps" <<'PY'
import json, re, subprocess, sys
w, commit, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
cpu = re.search(r"Model name:\s*(.*)", subprocess.run(["lscpu"], capture_output=True, text=True).stdout).group(1).strip()
names = ["quickstart_dense", "quickstart_fff", "quickstart_none", "demo_dense", "demo_mod_fff", "demo_mod_none"]
fastest = lambda n, p: max((json.load(open(f"{w}/{n}_{p}_{r}.json")) for r in (1, 2, 3)), key=lambda r: r["tokens_per_s"])
runs = {f"{n}_{p}": fastest(n, p) for n in names for p in ("fp32", "bf16")}
pairs = [("quickstart_fff", "quickstart_dense"), ("demo_mod_fff", "demo_dense")]
rate = lambda r: r["tokens_per_s"] * r["flops_per_token"]  # model FLOP/s (not MFU: each process measures its own peak)
ratios = {f"{a}_{p}": rate(runs[f"{a}_{p}"]) / rate(runs[f"{b}_{p}"]) for a, b in pairs for p in ("fp32", "bf16")}
# the ceiling: the model without its MLP, plus the FFF layers' FLOPs at the peak the FFF run measured
def ceiling(fff, none, dense):
    peak = rate(fff) / fff["mfu"]
    seconds = 1 / none["tokens_per_s"] + (fff["flops_per_token"] - none["flops_per_token"]) / peak
    return fff["flops_per_token"] / seconds / rate(dense)
nones = {"quickstart_fff": "quickstart_none", "demo_mod_fff": "demo_mod_none"}
ceilings = {f"{a}_{p}": ceiling(runs[f"{a}_{p}"], runs[f"{nones[a]}_{p}"], runs[f"{b}_{p}"])
            for a, b in pairs for p in ("fp32", "bf16")}
json.dump({"machine": {"cpu": cpu}, "commit": commit, "steps": steps, "runs": runs,
           "flop_rate_vs_dense": ratios, "ceiling_vs_dense": ceilings}, open("bench/results/fff_train.json", "w"), indent=2)
print(f"machine: {cpu}; commit {commit}; {steps} timed steps each, the fastest of 3 runs")
print("| model | precision | tokens/s | ms/step | MFLOP/token | GFLOP/s | MFU | FLOP rate vs its dense twin | ceiling |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
for n in names:
    for p in ("fp32", "bf16"):
        r = runs[f"{n}_{p}"]
        ratio = f"{100 * ratios[f'{n}_{p}']:.0f}%" if f"{n}_{p}" in ratios else ""
        ceil = f"{100 * ceilings[f'{n}_{p}']:.0f}%" if f"{n}_{p}" in ceilings else ""
        print(f"| {n} | {p} | {r['tokens_per_s']:.0f} | {r['step_ms']:.1f} | {r['flops_per_token'] / 1e6:.1f} | "
              f"{rate(r) / 1e9:.0f} | {100 * r['mfu']:.1f}% | {ratio} | {ceil} |")
print("wrote bench/results/fff_train.json")
PY
