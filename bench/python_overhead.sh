#!/usr/bin/env bash
# The Python layer's cost over the C++ API on the same forward (bench/python_overhead.py);
# writes bench/results/python_overhead.json.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh flopwise_python >/dev/null
PYTHONPATH=build/python PYTHONDONTWRITEBYTECODE=1 /usr/bin/python3 bench/python_overhead.py
