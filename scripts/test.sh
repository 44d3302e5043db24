#!/usr/bin/env bash
# Sets up and builds flopwise, runs the whole test suite with ctest, the tests side by
# side on every core (arguments go to ctest), then checks that every test wrote only
# under its own folder.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
stamp=build/tests/.ctest-started
touch "$stamp"
ctest --test-dir build --output-on-failure -j"$(nproc)" "$@"
./scripts/check_test_writes.sh "$stamp"
