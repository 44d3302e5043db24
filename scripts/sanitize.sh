#!/usr/bin/env bash
# The test suite under AddressSanitizer (with LeakSanitizer) and
# UndefinedBehaviorSanitizer: builds flopwise, its MPI plugin and the tests into
# build-asan/ (debug info, -O1) and runs ctest there. Any sanitizer report fails the
# test it happens in (halt_on_error; UBSan does not recover). Extra arguments go to
# ctest (e.g. -R Kernels). The Python module's tests (Python.*) are left out: their
# host, /usr/bin/python3, is not instrumented, so the ASan runtime arrives with the
# extension after the interpreter has allocated (matplotlib's fonts then fail with
# "attempting free on address which was not malloc()-ed"), and with the runtime
# preloaded instead, an exception thrown through pybind11 aborts the process. The C++
# paths they call are the ones the other tests run here.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh flopwise >/dev/null  # packages and data; the plain build stays as it is
flags="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFLOPWISE_BENCH=OFF \
  -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS="$flags" -DCMAKE_SHARED_LINKER_FLAGS="$flags" >/dev/null
cmake --build build-asan -j"$(nproc)"
# keep every module mapped until exit (scripts/sanitize/keep_modules.c); ASan would
# otherwise refuse a preloaded library that comes before its runtime
cc -shared -fPIC -O1 -o build-asan/keep_modules.so scripts/sanitize/keep_modules.c
export LD_PRELOAD=$PWD/build-asan/keep_modules.so
export ASAN_OPTIONS="halt_on_error=1:detect_leaks=1:abort_on_error=1:verify_asan_link_order=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export LSAN_OPTIONS="suppressions=$PWD/scripts/lsan.supp:print_suppressions=0"  # no statistics after a command's output
ctest --test-dir build-asan --output-on-failure --timeout 1800 -E '^Python\.' "$@"
