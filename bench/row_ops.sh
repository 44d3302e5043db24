#!/usr/bin/env bash
# The ceiling of the fast feedforward kernels on this machine: the two row operations
# they are made of (kernels/row_ops.h: a token's vector against four rows, and a
# weighted sum of a token's 96 rows), one thread, at the quick-start FFF layer's width
# (d=256, rows of 1 KiB), with rows picked at random from 16 rows (in L1) and from the
# layer's whole 1008-row matrix (1 MiB, as a tree walk meets them), in fp32 and with
# bf16 rows; beside them oneDNN's matrix product of the same width on one thread
# (2048 x 256 x 1008), fp32 and bf16. Three runs of build/bench_kernels, the median of
# each rate. Writes bench/results/row_ops.json and prints the table.  bench/row_ops.sh
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for r in 1 2 3; do
  ./build/bench_kernels --benchmark_filter='RowDot4|RowsCombine|AtRowWidth' --benchmark_format=json > "$work/$r.json"
done
/usr/bin/python3 - "$work" "$(git rev-parse --short HEAD)" <<'PY'
import json, re, statistics, subprocess, sys
w, commit = sys.argv[1], sys.argv[2]
cpu = re.search(r"Model name:\s*(.*)", subprocess.run(["lscpu"], capture_output=True, text=True).stdout).group(1).strip()
rates = {}
for r in (1, 2, 3):
    for b in json.load(open(f"{w}/{r}.json"))["benchmarks"]:
        rates.setdefault(b["name"].replace("/real_time", ""), []).append(b["FLOP/s"] / 1e9)
gflops = {k: statistics.median(v) for k, v in rates.items()}
gemm = {"fp32": gflops["BM_MatmulAtRowWidth"], "bf16": gflops["BM_MatmulAtRowWidthBf16"]}
rows = []
for op in ("RowDot4", "RowsCombine"):
    for p, t in (("fp32", "float"), ("bf16", "bf16")):
        for n in (16, 1008):
            g = gflops[f"BM_{op}<{t}>/{n}"]
            rows.append({"op": op, "precision": p, "rows": n, "gflops": g, "vs_matmul": g / gemm[p]})
json.dump({"machine": {"cpu": cpu}, "commit": commit, "threads": 1, "width": 256, "matmul_gflops": gemm,
           "row_ops": rows, "runs": rates}, open("bench/results/row_ops.json", "w"), indent=2)
print(f"machine: {cpu}; commit {commit}; one thread, width 256, median of 3 runs")
print("| operation | precision | rows picked from | GFLOP/s | share of the matrix product's |")
print("|---|---|---:|---:|---:|")
for r in rows:
    where = "16 (16 KiB, L1)" if r["rows"] == 16 else "1008 (the layer's matrix)"
    print(f"| {r['op']} | {r['precision']} | {where} | {r['gflops']:.0f} | {100 * r['vs_matmul']:.0f}% |")
for p in ("fp32", "bf16"):
    print(f"| oneDNN matmul 2048 x 256 x 1008 | {p} | | {gemm[p]:.0f} | 100% |")
PY
