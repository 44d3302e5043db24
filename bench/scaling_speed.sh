#!/usr/bin/env bash
# Mixture-of-Depths's headline, measured on the scaling experiment's own runs: at each
# budget, the MoD models whose validation loss matches or beats the isoFLOP-optimal
# dense model's, and how much faster each one steps than that dense model (the paper
# reports up to 66% faster at its scale).
#
# It reads bench/results/scaling/runs.csv (bench/scaling.sh writes it), picks per budget
# the dense run with the lowest loss and every MoD run at the same budget whose loss is at
# most that (if there is none, the best MoD run, marked as not matching), and times a
# training step of each shape with `flopwise bench train` on the experiment's config
# (batch 8 x 128): the shapes of one budget interleaved, 3 rounds of 40 steps after 5
# warm-up steps, the median of the rounds' mean step times. Timings need a quiet machine:
# run it when no sweep is running.
# Writes bench/results/scaling/mod_speed.json (with the CPU's name and the commit) and
# prints a table.
#   bench/scaling_speed.sh [--rounds 3] [--steps 40]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=3
steps=40
while (($#)); do
  case "$1" in
    --rounds) rounds=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    *) echo "scaling_speed: unknown argument $1" >&2; exit 2 ;;
  esac
done
./scripts/setup.sh flopwise >/dev/null
fw=./build/flopwise
results=bench/results/scaling
[ -f $results/runs.csv ] || { echo "scaling_speed: $results/runs.csv is missing (run bench/scaling.sh first)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# the pairs to time: one line per shape, "budget variant layers d_model loss matches"
/usr/bin/python3 - "$results/runs.csv" > "$work/shapes" <<'PY'
import csv, math, sys
rows = [r for r in csv.DictReader(open(sys.argv[1])) if math.isfinite(float(r["loss"]))]
for r in rows:  # a run's exact FLOPs are its budget to within one step: 1.0019e11 -> 1e11
    r["budget"] = float(f"{float(r['flops']):.1g}")
for budget in sorted({r["budget"] for r in rows}):
    at = [r for r in rows if r["budget"] == budget]
    dense = [r for r in at if r["variant"] == "dense"]
    mod = [r for r in at if r["variant"] == "mod"]
    if not dense or not mod:
        continue
    best = min(dense, key=lambda r: float(r["loss"]))
    matching = [r for r in mod if float(r["loss"]) <= float(best["loss"])]
    picked = matching or [min(mod, key=lambda r: float(r["loss"]))]
    print(budget, "dense", best["layers"], best["d_model"], best["loss"], 1)
    for r in picked:
        print(budget, "mod", r["layers"], r["d_model"], r["loss"], int(bool(matching)))
PY
[ -s "$work/shapes" ] || { echo "scaling_speed: no budget in $results/runs.csv has both dense and MoD runs" >&2; exit 1; }

time_shape() {  # variant layers d_model -> one JSON line of bench train
  local mod=false; [ "$1" = mod ] && mod=true
  $fw bench train --config configs/scaling.json --set model.n_layers="$2" --set model.d_model="$3" \
    --set model.n_heads=$(($3 / 32)) --set mod.enabled=$mod --steps "$steps" --warmup 5 --json | tail -1
}
for round in $(seq "$rounds"); do
  echo "scaling_speed: round $round of $rounds" >&2
  i=0
  while read -r budget variant layers d loss matches; do
    time_shape "$variant" "$layers" "$d" > "$work/t_${i}_$round.json"
    i=$((i + 1))
  done < "$work/shapes"
done

/usr/bin/python3 - "$work" "$rounds" "$results/mod_speed.json" "$(git rev-parse --short HEAD)" <<'PY'
import json, statistics, sys
work, rounds, out, commit = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
shapes = [l.split() for l in open(f"{work}/shapes")]
entries, cpu = [], ""
for i, (budget, variant, layers, d, loss, matches) in enumerate(shapes):
    t = [json.load(open(f"{work}/t_{i}_{r}.json")) for r in range(1, rounds + 1)]
    cpu = t[0]["cpu"]
    entries.append({"budget": float(budget), "variant": variant, "layers": int(layers), "d_model": int(d),
                    "params": t[0]["params"], "loss": float(loss), "matches_dense_optimum": matches == "1",
                    "forward_flops_per_token": t[0]["forward_flops_per_token"],
                    "step_ms": statistics.median(x["step_ms"] for x in t),
                    "step_ms_rounds": [x["step_ms"] for x in t]})
budgets = []
print(f"{'budget':>8} {'model':>10} {'params':>8} {'loss':>7} {'fwd MFLOP/tok':>13} {'step ms':>8} {'faster':>7}")
for b in sorted({e["budget"] for e in entries}):
    dense = next(e for e in entries if e["budget"] == b and e["variant"] == "dense")
    mods = [e for e in entries if e["budget"] == b and e["variant"] == "mod"]
    for e in [dense] + mods:
        e["faster_than_dense_optimum"] = dense["step_ms"] / e["step_ms"] - 1
        mark = "" if e["matches_dense_optimum"] else " (does not match)"
        print(f"{b:8.0e} {e['variant'] + ' ' + str(e['layers']) + 'x' + str(e['d_model']):>10} {e['params']:8d} "
              f"{e['loss']:7.4f} {e['forward_flops_per_token'] / 1e6:13.3f} {e['step_ms']:8.2f} "
              f"{100 * e['faster_than_dense_optimum']:6.1f}%{mark}")
    budgets.append({"budget": b, "dense_optimum": dense, "mod": mods})
json.dump({"cpu": cpu, "commit": commit, "rounds": rounds,
           "method": "flopwise bench train, configs/scaling.json shapes, shapes of a budget interleaved, "
                     "median over rounds of the mean step time",
           "budgets": budgets}, open(out, "w"), indent=1)
print(f"wrote {out}")
PY
