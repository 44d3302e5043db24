#!/usr/bin/env bash
# Tokenisation throughput on the Brown Corpus (its detagged training text, 5.4 MB), one
# thread, side by side in one run: bytes, GPT-2 BPE, and SentencePiece BPE and unigram
# models of 2048 pieces trained on that text. Encode and decode MB/s, best of 3 runs,
# each run with a fresh tokenizer (GPT-2's piece cache starts cold, as in one pass of
# `prepare`). Writes bench/results/tokenizers.json and prints the table.
#   bench/tokenizers.sh
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh >/dev/null
fw=./build/flopwise
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
$fw prepare --brown data/brown-src --out "$work/brown" >/dev/null
text="$work/brown/train.txt"
for type in bpe unigram; do
  $fw tokenizer train --input "$text" --vocab 2048 --model-type $type --out "$work/$type.model" >/dev/null
done
$fw bench tokenizer --threads 1 --input "$text" --tokenizer bytes --tokenizer gpt2 \
  --tokenizer "spm:$work/bpe.model" --tokenizer "spm:$work/unigram.model" --json | tail -1 > "$work/r.json"
/usr/bin/python3 - "$work" "$(git rev-parse --short HEAD)" <<'PY'
import json, re, subprocess, sys
w, commit = sys.argv[1], sys.argv[2]
r = json.load(open(f"{w}/r.json"))
for t in r["tokenizers"]:  # temporary paths → names
    t["tokenizer"] = re.sub(r"spm:.*/(\w+)\.model", r"spm \1 2048 (Brown train)", t["tokenizer"])
    t["tokenizer"] = re.sub(r"gpt2:.*", "gpt2", t["tokenizer"])
cpu = re.search(r"Model name:\s*(.*)", subprocess.run(["lscpu"], capture_output=True, text=True).stdout).group(1).strip()
out = {"machine": {"cpu": cpu, "threads": 1}, "commit": commit, "text": "Brown Corpus train split, detagged", **r}
json.dump(out, open("bench/results/tokenizers.json", "w"), indent=2)
print(f"machine: {cpu}, 1 thread; commit {commit}; {r['bytes']} bytes, best of {r['runs']}")
print("| tokenizer | tokens | bytes/token | encode MB/s | decode MB/s |")
print("|---|---:|---:|---:|---:|")
for t in r["tokenizers"]:
    print(f"| {t['tokenizer']} | {t['tokens']} | {t['bytes_per_token']:.2f} | {t['encode_mb_per_s']:.1f} | {t['decode_mb_per_s']:.1f} |")
PY
