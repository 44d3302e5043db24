#!/usr/bin/env bash
# Data-parallel scaling on this machine, side by side in one run: the same training
# (same global batch) as 1 process × 1 thread, 2 MPI ranks × 1 thread (plain and
# ZeRO-1), and, for reference, 1 process × 2 OpenMP threads.
#  tokens/s: the median of the logged 10-step windows after the first (warm-up) one,
#    then the median over 3 interleaved rounds; per process = tokens/s / processes.
#  scaling efficiency at 2 ranks = (tokens/s per process at 2) / (tokens/s at 1).
#  communication share: time inside collectives over step time (waiting for the
#    slower rank included), from the same windows.
# The model of configs/quickstart.json (d=256, 4 layers, 3.2M parameters; licence corpus,
# bytes) at its global batch of 16 sequences of 128 and at 4: the all-reduce moves the
# same 13 MB of gradients per step while each rank computes 4x fewer tokens.
# Writes bench/results/NAME.json and prints the table.
#   bench/mpi_scaling.sh [--steps N] [--out NAME]   (default 40 steps, mpi_scaling: ~6 min)
set -euo pipefail
cd "$(dirname "$0")/.."
steps=40
name=mpi_scaling
while (($#)); do
  case "$1" in
    --steps) steps=$2; shift 2 ;;
    --out) name=$2; shift 2 ;;
    *) echo "bench: unknown argument $1" >&2; exit 2 ;;
  esac
done
./scripts/setup.sh flopwise >/dev/null  # with Open MPI and the MPI plugin
if [ ! -x /usr/bin/python3 ]; then  # used for the arithmetic and the tables
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3 >/dev/null
fi
fw=$PWD/build/flopwise
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
$fw prepare --input /usr/share/common-licenses/* --out "$work/data" >/dev/null
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1  # containers run as root
mpirun=(mpirun --oversubscribe -np 2)

common=(--data "$work/data" --set train.steps=$steps --set train.warmup=5 --set train.eval_every=0
        --set train.ckpt_every=0 --set train.log_every=10)
declare -A shapes=(
  [batch16]="--config configs/quickstart.json"
  [batch4]="--config configs/quickstart.json --set train.batch_size=4"
)
for round in 1 2 3; do
  for shape in batch16 batch4; do
    read -r -a s <<< "${shapes[$shape]}"
    echo "round $round, $shape: 1x1, 2x1, 2x1 ZeRO-1, 1x2" >&2
    $fw train "${common[@]}" "${s[@]}" --threads 1 --out "$work/${shape}_p1t1_$round" >/dev/null 2>&1
    "${mpirun[@]}" "$fw" train "${common[@]}" "${s[@]}" --threads 1 --out "$work/${shape}_p2t1_$round" >/dev/null 2>&1
    "${mpirun[@]}" "$fw" train "${common[@]}" "${s[@]}" --threads 1 --zero1 --out "$work/${shape}_p2z_$round" >/dev/null 2>&1
    $fw train "${common[@]}" "${s[@]}" --threads 2 --out "$work/${shape}_p1t2_$round" >/dev/null 2>&1
  done
done

/usr/bin/python3 - "$work" "$(git rev-parse --short HEAD)" "$name" "$steps" <<'PY'
import json, re, statistics, subprocess, sys
w, commit, name, steps = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
def windows(run):  # metrics rows after the first (warm-up) window
    rows = [json.loads(l) for l in open(f"{w}/{run}/metrics.jsonl")]
    return rows[1:]
def measure(shape, setup):
    tps, comm = [], []
    for r in (1, 2, 3):
        rows = windows(f"{shape}_{setup}_{r}")
        tps.append(statistics.median(x["tokens_per_s"] for x in rows))
        comm.append(statistics.median(x.get("comm_share", 0.0) for x in rows))
    return statistics.median(tps), statistics.median(comm)
cpu = re.search(r"Model name:\s*(.*)", subprocess.run(["lscpu"], capture_output=True, text=True).stdout).group(1).strip()
res = {"machine": {"cpu": cpu}, "commit": commit, "steps": steps, "shapes": {}}
setups = [("p1t1", 1, "1 process x 1 thread"), ("p2t1", 2, "2 ranks x 1 thread"),
          ("p2z", 2, "2 ranks x 1 thread, ZeRO-1"), ("p1t2", 1, "1 process x 2 threads")]
for shape, desc in (("batch16", "configs/quickstart.json: d=256, 4 layers, seq 128, global batch 16"),
                    ("batch4", "configs/quickstart.json with global batch 4")):
    base, _ = measure(shape, "p1t1")
    out = {"config": desc}
    for key, procs, label in setups:
        tps, comm = measure(shape, key)
        out[key] = {"setup": label, "tokens_per_s": tps, "tokens_per_s_per_process": tps / procs,
                    "scaling_efficiency": tps / procs / base, "comm_share": comm}
    res["shapes"][shape] = out
json.dump(res, open(f"bench/results/{name}.json", "w"), indent=2)
print(f"machine: {cpu}; commit {commit}; {steps} steps, median of 3 interleaved rounds")
print("| shape | setup | tokens/s | per process | scaling efficiency | communication share |")
print("|-------|-------|---------:|------------:|-------------------:|--------------------:|")
for shape, out in res["shapes"].items():
    for key, _, label in setups:
        o = out[key]
        print(f"| {shape} | {label} | {o['tokens_per_s']:.0f} | {o['tokens_per_s_per_process']:.0f} | "
              f"{100*o['scaling_efficiency']:.0f}% | {100*o['comm_share']:.0f}% |")
PY
