#!/usr/bin/env bash
# After a ctest run: every test wrote only under its own folder, build/tests/tmp/<Suite.Test>/
# (test::temp_dir), so tests can run side by side under `ctest -j`. Fails, naming them,
# if a folder there belongs to no test, or if a file anywhere else in the checkout changed
# since STAMP (a file touched before ctest started). Run folders of other builds
# (build-*/) and the checkout's .git are not looked at.
#   scripts/check_test_writes.sh STAMP
set -euo pipefail
cd "$(dirname "$0")/.."
stamp=$1
bad=0
# test names as ctest lists them; parameterised ones have '/' where the folder has '_'
names=$(ctest --test-dir build -N | sed -n 's/^ *Test *#[0-9]*: \([^ ]*\).*/\1/p' | tr '/' '_')
for d in build/tests/tmp/*/; do
  [ -d "$d" ] || continue
  n=$(basename "$d")
  [ -n "$(find "$d" -newer "$stamp" -print -quit)" ] || continue  # from an earlier run
  if ! grep -qxF "$n" <<<"$names"; then
    echo "check_test_writes: build/tests/tmp/$n/ is no test's folder" >&2
    bad=1
  fi
done
outside=$(find . -path ./.git -prune -o -path ./build/tests/tmp -prune -o -path ./build/Testing -prune \
  -o -path './build-*' -prune -o -newer "$stamp" -type f -print)
if [ -n "$outside" ]; then
  echo "check_test_writes: the tests wrote outside their folders:" >&2
  echo "$outside" | head -20 >&2
  bad=1
fi
[ $bad -eq 0 ] && echo "check_test_writes: every test wrote only under build/tests/tmp/<its name>/"
exit $bad
