#!/usr/bin/env bash
# flopwise against the PyTorch peer (../shared/peers/torch_gpt.py) on the same
# model, side by side in one run: training tokens/s and MFU, and batch-1 sampling
# tokens/s; flopwise in fp32 (like the peer) and with bf16 matmuls (train.matmul_bf16). Writes bench/results/train_vs_torch.json and prints a table.
#   bench/train_vs_torch.sh [--rounds N] [extra --set overrides for both]
# The peer runs on Debian's python3-torch; Debian's torch is linked against the
# generic reference BLAS (~5 GFLOP/s), so this script also installs OpenBLAS,
# which Debian's alternatives then use for libblas.so.3.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=2
[ "${1:-}" = "--rounds" ] && { rounds=$2; shift 2; }
./scripts/setup.sh >/dev/null
missing=()
for p in python3-torch libopenblas0-pthread; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
peer=${FLOPWISE_PEER:-../shared/peers/torch_gpt.py}
[ -f "$peer" ] || { echo "bench: peer $peer not found (set FLOPWISE_PEER)" >&2; exit 1; }
threads=$(nproc)
out=bench/results/train_vs_torch.json
tmp=$(mktemp -d)
# The default bench config: d=512, 6 layers, 8 heads, seq 256, batch 8, vocab 256.
for r in $(seq "$rounds"); do
  echo "round $r/$rounds: flopwise bench train (fp32, then bf16 matmuls)" >&2
  ./build/flopwise bench train --steps 5 --threads "$threads" --json "$@" | tail -1 > "$tmp/fw_train_$r.json"
  ./build/flopwise bench train --steps 5 --threads "$threads" --json --set train.matmul_bf16=true "$@" | tail -1 > "$tmp/fw16_train_$r.json"
  echo "round $r/$rounds: torch peer training" >&2
  /usr/bin/python3 "$peer" --steps 5 --threads "$threads" > "$tmp/pt_train_$r.txt"
  echo "round $r/$rounds: flopwise bench sample (fp32, then bf16)" >&2
  ./build/flopwise bench sample --threads "$threads" --json "$@" | tail -1 > "$tmp/fw_sample_$r.json"
  ./build/flopwise bench sample --threads "$threads" --json --set train.matmul_bf16=true "$@" | tail -1 > "$tmp/fw16_sample_$r.json"
  echo "round $r/$rounds: torch peer sampling" >&2
  /usr/bin/python3 "$peer" --sample 256 --threads "$threads" > "$tmp/pt_sample_$r.txt"
done
/usr/bin/python3 - "$tmp" "$rounds" "$out" "$(git rev-parse --short HEAD)" <<'PY'
import json, re, sys, statistics, subprocess
tmp, rounds, out, commit = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
R = range(1, rounds + 1)
fw_train = [json.load(open(f"{tmp}/fw_train_{r}.json")) for r in R]
fw_sample = [json.load(open(f"{tmp}/fw_sample_{r}.json")) for r in R]
fw16_train = [json.load(open(f"{tmp}/fw16_train_{r}.json")) for r in R]
fw16_sample = [json.load(open(f"{tmp}/fw16_sample_{r}.json")) for r in R]
pt_train = [float(re.search(r"tokens/s=([\d.]+)", open(f"{tmp}/pt_train_{r}.txt").read()).group(1)) for r in R]
pt_sample = [float(re.search(r"batch 1: ([\d.]+) tokens/s", open(f"{tmp}/pt_sample_{r}.txt").read()).group(1)) for r in R]
med = statistics.median
fw_tps, fw_mfu = med(x["tokens_per_s"] for x in fw_train), med(x["mfu"] for x in fw_train)
peak = med(x["peak_gflops"] for x in fw_train) * 1e9
fpt = fw_train[0]["flops_per_token"]
pt_tps, fw_s, pt_s = med(pt_train), med(x["tokens_per_s"] for x in fw_sample), med(pt_sample)
b_tps, b_mfu = med(x["tokens_per_s"] for x in fw16_train), med(x["mfu"] for x in fw16_train)
b_peak = med(x["peak_gflops"] for x in fw16_train) * 1e9
b_s = med(x["tokens_per_s"] for x in fw16_sample)
lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
model = re.search(r"Model name:\s*(.*)", lscpu).group(1).strip()
res = {"machine": {"cpu": model, "cores": fw_train[0]["threads"]}, "commit": commit, "rounds": rounds,
       "config": "d=512, 6 layers, 8 heads, seq 256, batch 8, vocab 256",
       "sgemm_peak_gflops": peak / 1e9, "flops_per_token": fpt,
       "flopwise": {"train_tokens_per_s": fw_tps, "mfu": fw_mfu, "sample_tokens_per_s": fw_s},
       "flopwise_bf16": {"train_tokens_per_s": b_tps, "mfu": b_mfu, "bf16_peak_gflops": b_peak / 1e9,
                         "sample_tokens_per_s": b_s,
                         "note": "train.matmul_bf16=true: bf16 matmul operands, fp32 accumulation and master weights"},
       "torch": {"train_tokens_per_s": pt_tps, "mfu_same_count": pt_tps * fpt / peak, "sample_tokens_per_s": pt_s,
                 "note": "torch 1.13 eager, OpenBLAS; its sampling recomputes the whole context per token (no KV cache)"},
       "ratio": {"train": fw_tps / pt_tps, "sample": fw_s / pt_s,
                 "train_bf16": b_tps / pt_tps, "sample_bf16": b_s / pt_s},
       "runs": {"flopwise_train": [x["tokens_per_s"] for x in fw_train], "torch_train": pt_train,
                "flopwise_sample": [x["tokens_per_s"] for x in fw_sample], "torch_sample": pt_sample,
                "flopwise_bf16_train": [x["tokens_per_s"] for x in fw16_train],
                "flopwise_bf16_sample": [x["tokens_per_s"] for x in fw16_sample]}}
json.dump(res, open(out, "w"), indent=2)
print(f"machine: {model}, {res['machine']['cores']} threads; fp32 sgemm peak {peak/1e9:.0f} GFLOP/s, "
      f"bf16 matmul peak {b_peak/1e9:.0f} GFLOP/s; commit {commit}")
print("|                            | flopwise fp32 | flopwise bf16 matmuls | torch peer (fp32) |")
print("|----------------------------|--------------:|----------------------:|------------------:|")
print(f"| train tokens/s             | {fw_tps:13.0f} | {b_tps:21.0f} | {pt_tps:17.0f} |")
print(f"| ratio to the peer          | {fw_tps/pt_tps:12.2f}x | {b_tps/pt_tps:20.2f}x |                   |")
print(f"| MFU (vs its own peak)      | {100*fw_mfu:12.1f}% | {100*b_mfu:20.1f}% | {100*pt_tps*fpt/peak:16.1f}% |")
print(f"| sample tokens/s (batch 1)  | {fw_s:13.1f} | {b_s:21.1f} | {pt_s:17.1f} |")
print(f"wrote {out}")
PY
rm -rf "$tmp"
