#!/usr/bin/env bash
# UltraFastBERT's question at this machine's scale: how much of a dense encoder's
# quality fast feedforward keeps, and at what speed. Encoders of one shape (the
# quick-start shape: d=256, 4 layers, 4 heads, sequences of 128; the 2048-piece Brown
# SentencePiece vocabulary + 4 special tokens) pretrained with masked-LM on the same
# number of training tokens, each with another MLP:
#   dense    1024 neurons                      (every token uses all)
#   fff_1x9  one tree of depth 9: 1023 neurons  (the depth that matches the dense width; 10 per token)
#   fff_1x7  one tree of depth 7: 255 neurons   (a shallower one; 8 per token)
#   fff_4x7  4 trees of depth 7: 1020 neurons   (32 per token)
#   fff_16x5 16 trees of depth 5: 1008 neurons  (96 per token)
#   leaf     the leaf form: 32 leaves of 32 neurons, 5 routers (37 per token)
#   none     no MLP
# then fine-tuned (whole model) on brown-genre and brown-pos with several seeds, and
# timed classifying Brown validation sentences at batch 1 and batched. Resumable: each
# step is skipped when its output exists. Runs with its own copy of the program
# (runs/ultrafastbert/flopwise), so rebuilding build/ meanwhile changes nothing.
# Results: bench/results/ultrafastbert/ (results.json, table.md).
#   bench/ultrafastbert.sh [--steps 600] [--seeds "1 2"] [--train-examples 1000] [--epochs 3] [--timing-only]
#                          [--models "dense fff_1x9 ..."] [--name SUFFIX] [--no-timing]
# (--timing-only: time again with the current build/flopwise, e.g. after a faster inference path;
#  --models: a subset; --name: runs/ultrafastbert_SUFFIX and bench/results/ultrafastbert/SUFFIX,
#  for a variant of the experiment such as a longer pretraining; --no-timing: skip the timing)
set -euo pipefail
cd "$(dirname "$0")/.."
steps=600 seeds="1 2" train_examples=1000 val_examples=1000 epochs=3 timing_only=0 timing=1 name="" models=""
while [ $# -gt 0 ]; do
  case "$1" in
    --steps) steps=$2; shift 2 ;;
    --seeds) seeds=$2; shift 2 ;;
    --train-examples) train_examples=$2; shift 2 ;;
    --epochs) epochs=$2; shift 2 ;;
    --timing-only) timing_only=1; shift ;;
    --no-timing) timing=0; shift ;;
    --models) models=$2; shift 2 ;;
    --name) name=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
./scripts/setup.sh >/dev/null
work=runs/ultrafastbert${name:+_$name}
out=bench/results/ultrafastbert${name:+/$name}
mkdir -p "$work" "$out"
[ -x "$work/flopwise" ] || { cp build/flopwise "$work/flopwise"; git rev-parse --short HEAD > "$work/commit"; }
fw=$work/flopwise
data=data/brown-spm
names=(dense fff_1x9 fff_1x7 fff_4x7 fff_16x5 leaf none)
mlps=("--set model.mlp=dense"
      "--set model.mlp=fff --set fff.trees=1 --set fff.depth=9"
      "--set model.mlp=fff --set fff.trees=1 --set fff.depth=7"
      "--set model.mlp=fff --set fff.trees=4 --set fff.depth=7"
      "--set model.mlp=fff --set fff.trees=16 --set fff.depth=5"
      "--set model.mlp=fff_leaf --set fff.trees=1 --set fff.depth=5 --set fff.leaf_width=32"
      "--set model.mlp=none")
# (a subset of the models: the others are dropped from the lists)
if [ -n "$models" ]; then
  keep_names=() keep_mlps=()
  for i in "${!names[@]}"; do
    if [[ " $models " == *" ${names[$i]} "* ]]; then keep_names+=("${names[$i]}"); keep_mlps+=("${mlps[$i]}"); fi
  done
  names=("${keep_names[@]}") mlps=("${keep_mlps[@]}")
fi
base="--config configs/quickstart.json --set model.kind=encoder --set model.vocab_size=2052 --set train.steps=$steps
      --set train.eval_every=0 --set train.ckpt_every=0"
if [ $timing_only = 0 ]; then
  for i in "${!names[@]}"; do
    n=${names[$i]}
    if [ ! -f "$work/$n.eval.json" ]; then
      rm -rf "$work/$n"
      # shellcheck disable=SC2086  # the --set arguments split on purpose
      $fw train --data $data --out "$work/$n" $base ${mlps[$i]} --json | tail -1 > "$work/$n.train.json"
      $fw eval --ckpt "$work/$n" --data $data --json | tail -1 > "$work/$n.eval.json.tmp"
      mv "$work/$n.eval.json.tmp" "$work/$n.eval.json"
    fi
  done
  for seed in $seeds; do
    for task in brown-genre brown-pos; do
      for n in "${names[@]}"; do
        ft=$work/$n.$task.$seed
        [ -f "$ft.json" ] && continue
        rm -rf "$ft"
        $fw finetune --ckpt "$work/$n" --task $task --out "$ft" --epochs "$epochs" --lr 5e-4 --seed "$seed" \
          --train-examples "$train_examples" --val-examples "$val_examples" --json | tail -1 > "$ft.json.tmp"
        mv "$ft.json.tmp" "$ft.json"
      done
    done
  done
fi
# Inference: the genre classifiers (seed 1) label 256 validation sentences, one per
# call (batch 1) and 64 per call, each model in turn, three rounds, the fastest kept.
head -n 256 $data/val.txt > "$work/sentences.txt"
timer=$fw
[ $timing_only = 1 ] && { cp build/flopwise "$work/flopwise.timing"; timer=$work/flopwise.timing; }
for round in 1 2 3; do
  [ $timing = 1 ] || break
  for n in "${names[@]}"; do
    for b in 1 64; do
      $timer classify --ckpt "$work/$n.brown-genre.1" --input "$work/sentences.txt" --batch $b 2>&1 >/dev/null |
        grep -o '[0-9.e+-]* ms per line' | cut -d' ' -f1 > "$work/$n.time.$b.$round"
    done
  done
done
# the program that timed: build/flopwise at the time of a --timing-only run, else the experiment's own
timing_commit=$(cat "$work/commit")
[ $timing_only = 1 ] && timing_commit=$(git rev-parse --short HEAD)
/usr/bin/python3 - "$work" "$out" "$steps" "$seeds" "$(cat "$work/commit")" "$timing_commit" "${names[*]}" "$timing" <<'PY'
import json, re, statistics, subprocess, sys
work, out, steps, seeds, commit, timing_commit = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4].split(), sys.argv[5], sys.argv[6]
names, timed = sys.argv[7].split(), sys.argv[8] == "1"
cpu = re.search(r"Model name:\s*(.*)", subprocess.run(["lscpu"], capture_output=True, text=True).stdout).group(1).strip()
def load(p):
    with open(p) as f: return json.load(f)
rows = {}
for n in names:
    full = load(f"{work}/{n}/config.json")
    cfg, fff = full["model"], full["fff"]
    ev = load(f"{work}/{n}.eval.json")
    tr = load(f"{work}/{n}.train.json")
    mlp, hidden = cfg["mlp"], cfg["mlp_hidden"] or 4 * cfg["d_model"]
    K, D, l = fff["trees"], fff["depth"], fff["leaf_width"]
    used, total = {"dense": (hidden, hidden), "fff": (K * (D + 1), K * (2 ** (D + 1) - 1)),
                   "fff_leaf": (K * (D + l), K * ((2 ** D - 1) + (2 ** D) * l)), "none": (0, 0)}[mlp]
    r = {"mlp": mlp, "neurons": total, "neurons_per_token": used, "mlm_loss": ev["val_loss"],
         "mlm_accuracy": ev["mlm_accuracy"], "train_tokens_per_s": tr["tokens_per_s"]}
    for task in ["brown-genre", "brown-pos"]:
        accs = [load(f"{work}/{n}.{task}.{s}.json")["accuracy"] for s in seeds]
        r[task] = {"accuracy": accs, "mean": statistics.mean(accs), "min": min(accs), "max": max(accs)}
    for b in ["1", "64"] if timed else []:
        times = []
        for rnd in [1, 2, 3]:
            with open(f"{work}/{n}.time.{b}.{rnd}") as f: times.append(float(f.read().strip()))
        r[f"ms_per_example_batch{b}"] = min(times)
    rows[n] = r
dense = rows["dense"]
for r in rows.values():
    for task in ["brown-genre", "brown-pos"]:
        r[task]["retention"] = r[task]["mean"] / dense[task]["mean"]
    if timed:
        r["speedup_batch1"] = dense["ms_per_example_batch1"] / r["ms_per_example_batch1"]
        r["speedup_batch64"] = dense["ms_per_example_batch64"] / r["ms_per_example_batch64"]
result = {"cpu": cpu, "commit": commit, "timing_commit": timing_commit, "pretraining_steps": steps, "pretraining_tokens": steps * 16 * 128,
          "finetune_seeds": seeds, "models": rows}
with open(f"{out}/results.json", "w") as f: json.dump(result, f, indent=2)
lines = [f"machine: {cpu}; commit {commit} (timing: {timing_commit}); pretraining {steps} steps x 2048 tokens each; fine-tuning seeds {' '.join(seeds)}",
         "| MLP | neurons (per token) | MLM loss | MLM acc | genre acc (min-max) | retention | POS acc (min-max) | retention | ms/example batch 1 | batch 64 | speedup b1 / b64 |",
         "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
for n in names:
    r = rows[n]
    g, p = r["brown-genre"], r["brown-pos"]
    share = f"{r['neurons']} ({r['neurons_per_token']}, {100 * r['neurons_per_token'] / max(1, r['neurons']):.1f}%)"
    timing = (f"{r['ms_per_example_batch1']:.2f} | {r['ms_per_example_batch64']:.3f} | "
              f"{r['speedup_batch1']:.2f}x / {r['speedup_batch64']:.2f}x |") if timed else "- | - | - |"
    lines.append(f"| {n} | {share} | {r['mlm_loss']:.3f} | {r['mlm_accuracy']:.3f} | {g['mean']:.3f} ({g['min']:.3f}-{g['max']:.3f}) | "
                 f"{100 * g['retention']:.0f}% | {p['mean']:.3f} ({p['min']:.3f}-{p['max']:.3f}) | {100 * p['retention']:.0f}% | " + timing)
with open(f"{out}/table.md", "w") as f: f.write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
