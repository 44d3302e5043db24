#!/usr/bin/env bash
# The main job on a fresh machine: set up (packages, build, the Brown Corpus and GPT-2's
# files), then `flopwise demo`: a dense, a Mixture-of-Depths and a MoD + fast
# feedforward model trained on the same FLOP budget, compared in one table, sampled,
# and reported in runs/demo/report.html.
#   ./scripts/demo.sh            about 5 minutes on 2 cores after the build
#   ./scripts/demo.sh --quick    about 1.5 minutes
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh flopwise  # the program alone: tests and benchmarks build with test.sh
./build/flopwise demo "$@"
