#!/usr/bin/env bash
# Sets up and builds flopwise, then runs the whole test suite with ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
ctest --test-dir build --output-on-failure "$@"
