#!/usr/bin/env bash
# The main job, until `flopwise demo` exists: set up, tokenize a text corpus that
# every Debian machine has (the licence texts in /usr/share/common-licenses),
# train a small byte-level model on it, then sample from it.
#   ./scripts/quickstart.sh          about 3 minutes on 2 cores
#   ./scripts/quickstart.sh --quick  about 30 seconds
set -euo pipefail
cd "$(dirname "$0")/.."
steps=600
[ "${1:-}" = "--quick" ] && steps=100
./scripts/setup.sh

corpus=(/usr/share/common-licenses/*)
./build/flopwise prepare --input "${corpus[@]}" --tokenizer bytes --out data/licenses
rm -rf runs/quickstart  # this script's own run folder: each quick start trains afresh
./build/flopwise train --data data/licenses --out runs/quickstart \
  --config configs/quickstart.json --set train.steps=$steps
./build/flopwise sample --ckpt runs/quickstart --prompt "This License" --tokens 300 --seed 1
