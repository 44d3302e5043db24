#!/usr/bin/env bash
# Fast feedforward trees in a language model, against the dense MLP and against no
# MLP at all, at equal training tokens (configs/quickstart.json's shape: d=256,
# 4 layers, dense MLP 1024 neurons; the byte-level licence corpus): validation loss,
# the leaves the trees use, training tokens/s, and batch-1 sampling tokens/s.
# FFF shapes of about the dense width: K=1 D=9 (1023 neurons, 10 per token), K=4 D=7
# (1020, 32 per token), K=16 D=5 (1008, 96 per token); and the leaf form, D=5 with
# leaves of 32 (1024 neurons trained softly, 32 + 5 routers per token at inference).
# Writes bench/results/NAME.json and prints the table.
#   bench/fff_vs_dense.sh [--steps N] [--out NAME]   (default 600 steps: ~25 minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
steps=600
name=fff_vs_dense
while (($#)); do
  case "$1" in
    --steps) steps=$2; shift 2 ;;
    --out) name=$2; shift 2 ;;
    *) echo "bench: unknown argument $1" >&2; exit 2 ;;
  esac
done
./scripts/setup.sh >/dev/null
fw=./build/flopwise
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
$fw prepare --input /usr/share/common-licenses/* --out "$work/data" >/dev/null
q=(--config configs/quickstart.json --set train.eval_every=0 --set train.ckpt_every=0 --set train.log_every=100
   --set train.steps=$steps)
variants=("dense:--set model.mlp=dense"
          "fff_K1_D9:--set model.mlp=fff --set fff.trees=1 --set fff.depth=9"
          "fff_K4_D7:--set model.mlp=fff --set fff.trees=4 --set fff.depth=7"
          "fff_K16_D5:--set model.mlp=fff --set fff.trees=16 --set fff.depth=5"
          "fff_leaf_D5_l32:--set model.mlp=fff_leaf --set fff.depth=5 --set fff.leaf_width=32"
          "none:--set model.mlp=none")
for v in "${variants[@]}"; do
  id=${v%%:*}; read -r -a extra <<< "${v#*:}"
  echo "training $id ($steps steps)" >&2
  $fw train --data "$work/data" --out "$work/$id" "${q[@]}" "${extra[@]}" --json 2>/dev/null | tail -1 > "$work/train_$id.json"
  $fw eval --ckpt "$work/$id" --data "$work/data" --json | tail -1 > "$work/eval_$id.json"
  $fw bench sample --ckpt "$work/$id" --json | tail -1 > "$work/sample_$id.json"
done
/usr/bin/python3 - "$work" "$steps" "$(git rev-parse --short HEAD)" "$name" <<'PY'
import json, re, subprocess, sys
w, steps, commit, name = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
ids = ["dense", "fff_K1_D9", "fff_K4_D7", "fff_K16_D5", "fff_leaf_D5_l32", "none"]
L = lambda n: json.load(open(f"{w}/{n}.json"))
cpu = re.search(r"Model name:\s*(.*)", subprocess.run(["lscpu"], capture_output=True, text=True).stdout).group(1).strip()
rows = {i: {"train": L(f"train_{i}"), "eval": L(f"eval_{i}"), "sample": L(f"sample_{i}")} for i in ids}
res = {"machine": {"cpu": cpu, "cores": rows["dense"]["sample"]["threads"]}, "commit": commit,
       "config": "configs/quickstart.json shape (d=256, 4 layers, seq 128, batch 16, dense MLP 1024), licence corpus, bytes",
       "steps": steps, "tokens": steps * 16 * 128,
       "variants": {i: {"val_loss": r["eval"]["val_loss"], "flops_per_token": r["eval"]["flops_per_token"],
                        "fff_leaves_used": r["eval"].get("fff_leaves_used"),
                        "train_tokens_per_s": r["train"]["tokens_per_s"],
                        "sample_tokens_per_s": r["sample"]["tokens_per_s"]} for i, r in rows.items()}}
json.dump(res, open(f"bench/results/{name}.json", "w"), indent=2)
print(f"machine: {cpu}; commit {commit}; {steps} steps x 2048 tokens each")
print("| MLP | val loss | forward MFLOP/token | leaves used | train tokens/s | sample tokens/s (batch 1) |")
print("|---|---:|---:|---:|---:|---:|")
for i, r in res["variants"].items():
    used = f"{100*r['fff_leaves_used']:.0f}%" if r["fff_leaves_used"] is not None else "-"
    print(f"| {i} | {r['val_loss']:.4f} | {r['flops_per_token']/1e6:.2f} | {used} | {r['train_tokens_per_s']:.0f} | {r['sample_tokens_per_s']:.0f} |")
print(f"wrote bench/results/{name}.json")
PY
