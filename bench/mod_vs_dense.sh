#!/usr/bin/env bash
# Mixture-of-Depths against dense, side by side in one run.
#  Speed, on the bench config (d=512, 6 layers, 8 heads, seq 256, batch 8, vocab 256):
#    forward FLOPs per token, training step time (best step of 2 interleaved rounds of
#    5), and sampling tokens/s (each the best of 3 runs) at batch 1 and
#    batch 8 (median of 3 interleaved rounds). MoD sampling speed depends on its trained
#    router, so a MoD model is first trained briefly on the corpus (dense sampling does
#    not depend on its weights).
#  Quality, at an equal training-FLOP budget (MoD gets the extra steps its cheaper steps
#    buy), on the byte-level licence corpus with configs/quickstart.json's shape:
#    validation loss under top-k routing and under causal (sampling-time) routing, the
#    causal decisions' accuracy against top-k, and the fraction of tokens processed.
# Writes bench/results/NAME.json and prints both tables.
#   bench/mod_vs_dense.sh [--dense-steps N] [--out NAME] [--set mod.KEY=VALUE]...
#   (default 600 dense steps, NAME mod_vs_dense: about 12 minutes in all; the --set
#   overrides go to every MoD run, e.g. --set mod.gate=sigmoid)
set -euo pipefail
cd "$(dirname "$0")/.."
dense_steps=600
name=mod_vs_dense
mod=(--set mod.enabled=true)   # the paper's best: capacity 12.5%, every other block
while (($#)); do
  case "$1" in
    --dense-steps) dense_steps=$2; shift 2 ;;
    --out) name=$2; shift 2 ;;
    --set) mod+=(--set "$2"); shift 2 ;;
    *) echo "bench: unknown argument $1" >&2; exit 2 ;;
  esac
done
./scripts/setup.sh >/dev/null
if [ ! -x /usr/bin/python3 ]; then  # used for the arithmetic and the tables
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3 >/dev/null
fi
fw=./build/flopwise
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
$fw prepare --input /usr/share/common-licenses/* --out "$work/data" >/dev/null

echo "speed: bench train dense / MoD, 2 interleaved rounds" >&2
for round in 1 2; do
  $fw bench train --steps 5 --json | tail -1 > "$work/train_dense_$round.json"
  $fw bench train --steps 5 --json "${mod[@]}" | tail -1 > "$work/train_mod_$round.json"
done
echo "speed: training a bench-config MoD model briefly, for its router" >&2
$fw train --data "$work/data" --out "$work/bench_mod" "${mod[@]}" --set train.steps=150 \
  --set train.warmup=20 --set train.eval_every=0 --set train.ckpt_every=0 > /dev/null 2>&1
echo "speed: bench sample dense / MoD, batch 1 and 8, 3 rounds" >&2
for round in 1 2 3; do
  for batch in 1 8; do
    $fw bench sample --batch $batch --json | tail -1 > "$work/sample_dense_b${batch}_$round.json"
    $fw bench sample --batch $batch --ckpt "$work/bench_mod" --json | tail -1 > "$work/sample_mod_b${batch}_$round.json"
  done
done

# equal training FLOPs: MoD steps = dense steps × dense FLOPs per token / MoD FLOPs per token
q=(--config configs/quickstart.json --set train.eval_every=0 --set train.ckpt_every=0 --set train.log_every=100)
fd=$($fw bench train --steps 1 --warmup 0 --json "${q[@]}" | tail -1 | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["flops_per_token"])')
fm=$($fw bench train --steps 1 --warmup 0 --json "${q[@]}" "${mod[@]}" | tail -1 | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["flops_per_token"])')
mod_steps=$(/usr/bin/python3 -c "print(round($dense_steps * $fd / $fm))")
echo "quality: dense $dense_steps steps, MoD $mod_steps steps (same training FLOPs)" >&2
for v in dense mod; do
  extra=(); steps=$dense_steps
  [ $v = mod ] && { extra=("${mod[@]}"); steps=$mod_steps; }
  start=$(/usr/bin/python3 -c 'import time; print(time.time())')
  $fw train --data "$work/data" --out "$work/q_$v" "${q[@]}" "${extra[@]}" --set train.steps=$steps --json 2>/dev/null | tail -1 > "$work/qtrain_$v.json"
  /usr/bin/python3 -c "import json,time; print(json.dumps({'seconds': time.time() - $start}))" > "$work/qtime_$v.json"
  $fw eval --ckpt "$work/q_$v" --data "$work/data" --json | tail -1 > "$work/qeval_$v.json"
done

/usr/bin/python3 - "$work" "$dense_steps" "$mod_steps" "$(git rev-parse --short HEAD)" "$name" "${mod[*]}" <<'PY'
import json, re, subprocess, sys
w, ds, ms, commit, name, mod_args = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6]
L = lambda n: json.load(open(f"{w}/{n}.json"))
# each step time: the best single step over both rounds (a first run after other
# work can read 25% slow on this shared machine)
def best_train(v):
    runs = [L(f"train_{v}_{r}") for r in (1, 2)]
    best = min(runs, key=lambda j: j["best_step_ms"])
    return {**best, "step_ms": best["best_step_ms"]}
td, tm = best_train("dense"), best_train("mod")
def median_run(v, b):  # the round with the median tokens/s
    runs = sorted((L(f"sample_{v}_b{b}_{r}") for r in (1, 2, 3)), key=lambda j: j["tokens_per_s"])
    return runs[1]
sd, sm, sd8, sm8 = median_run("dense", 1), median_run("mod", 1), median_run("dense", 8), median_run("mod", 8)
qd, qm = {k: L(f"{k}_dense") for k in ("qtrain", "qeval", "qtime")}, {k: L(f"{k}_mod") for k in ("qtrain", "qeval", "qtime")}
flop_ratio = td["forward_flops_per_token"] / tm["forward_flops_per_token"]
step_ratio = td["step_ms"] / tm["step_ms"]
cpu = re.search(r"Model name:\s*(.*)", subprocess.run(["lscpu"], capture_output=True, text=True).stdout).group(1).strip()
res = {"machine": {"cpu": cpu, "cores": td["threads"]}, "commit": commit, "mod_settings": mod_args,
       "speed": {"config": "d=512, 6 layers, 8 heads, seq 256, batch 8, vocab 256; MoD capacity 0.125 every other block",
                 "forward_flops_per_token": {"dense": td["forward_flops_per_token"], "mod": tm["forward_flops_per_token"], "ratio": flop_ratio},
                 "train_step_ms": {"dense": td["step_ms"], "mod": tm["step_ms"], "ratio": step_ratio,
                                   "fraction_of_flop_ideal": step_ratio / flop_ratio},
                 "sample_tokens_per_s": {"dense": sd["tokens_per_s"], "mod": sm["tokens_per_s"],
                                         "ratio": sm["tokens_per_s"] / sd["tokens_per_s"],
                                         "mod_processed_fraction": sm.get("processed_fraction")},
                 "sample_tokens_per_s_batch8": {"dense": sd8["tokens_per_s"], "mod": sm8["tokens_per_s"],
                                                "ratio": sm8["tokens_per_s"] / sd8["tokens_per_s"],
                                                "mod_processed_fraction": sm8.get("processed_fraction")}},
       "quality": {"config": "configs/quickstart.json shape (d=256, 4 layers, seq 128, batch 16), licence corpus, bytes",
                   "dense": {"steps": ds, **qd["qeval"], "train_seconds": qd["qtime"]["seconds"], "tokens_per_s": qd["qtrain"]["tokens_per_s"]},
                   "mod": {"steps": ms, **qm["qeval"], "train_seconds": qm["qtime"]["seconds"], "tokens_per_s": qm["qtrain"]["tokens_per_s"]}}}
json.dump(res, open(f"bench/results/{name}.json", "w"), indent=2)
print(f"machine: {cpu}, {td['threads']} threads; commit {commit}; MoD settings: {mod_args}")
print("| bench config                  | dense | MoD (12.5%, every other block) | ratio |")
print("|-------------------------------|------:|-------------------------------:|------:|")
print(f"| forward MFLOP/token           | {td['forward_flops_per_token']/1e6:5.1f} | {tm['forward_flops_per_token']/1e6:30.1f} | {flop_ratio:4.2f}x |")
print(f"| training step (ms)            | {td['step_ms']:5.0f} | {tm['step_ms']:30.0f} | {step_ratio:4.2f}x |")
print(f"| sampling tokens/s, batch 1    | {sd['tokens_per_s']:5.0f} | {sm['tokens_per_s']:30.0f} | {sm['tokens_per_s']/sd['tokens_per_s']:4.2f}x |")
print(f"| sampling tokens/s, batch 8    | {sd8['tokens_per_s']:5.0f} | {sm8['tokens_per_s']:30.0f} | {sm8['tokens_per_s']/sd8['tokens_per_s']:4.2f}x |")
print(f"step-time speedup is {100*step_ratio/flop_ratio:.0f}% of the FLOP ratio; MoD sampling processed {100*(sm.get('processed_fraction') or 0):.1f}% of tokens per routed block")
print()
print("| equal training FLOPs          | dense | MoD |")
print("|-------------------------------|------:|----:|")
print(f"| steps                         | {ds} | {ms} |")
print(f"| val loss (top-k routing)      | {qd['qeval']['val_loss']:.4f} | {qm['qeval']['val_loss']:.4f} |")
print(f"| val loss (causal routing)     | {qd['qeval']['val_loss_causal'] if 'val_loss_causal' in qd['qeval'] else qd['qeval']['val_loss']:.4f} | {qm['qeval']['val_loss_causal']:.4f} |")
print(f"| causal decisions vs top-k     | - | {100*qm['qeval']['causal_accuracy']:.1f}% |")
print(f"| router σ(r)>0.5 vs top-k      | - | {100*qm['qeval']['router_accuracy']:.1f}% |")
print(f"| predictor vs top-k            | - | {100*qm['qeval']['predictor_accuracy']:.1f}% |")
print(f"| processed when sampling       | 100% | {100*qm['qeval']['processed_fraction']:.1f}% |")
print(f"| training wall time (s)        | {qd['qtime']['seconds']:.0f} | {qm['qtime']['seconds']:.0f} |")
print(f"wrote bench/results/{name}.json")
PY
