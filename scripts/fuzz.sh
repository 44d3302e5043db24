#!/usr/bin/env bash
# libFuzzer targets for the parsers that read files from strangers, built with clang's
# fuzzer, AddressSanitizer and UndefinedBehaviorSanitizer into build-fuzz/.
#   scripts/fuzz.sh --list               the targets
#   scripts/fuzz.sh TARGET [SECONDS [RUNS]]  fuzz one target (default 60 s; stop early after RUNS
#                                        executions) from its seed corpus (fuzz/corpus/TARGET);
#                                        new inputs go to build-fuzz/corpus/TARGET
#   scripts/fuzz.sh --all SECONDS        each target in turn (CI runs this for a few seconds)
# Prints libFuzzer's final statistics; exits non-zero on a crash, hang, leak or sanitizer
# report, leaving the input that caused it in build-fuzz/.
set -euo pipefail
cd "$(dirname "$0")/.."
declare -A sources=(
  [safetensors]="src/formats/safetensors.cpp src/formats/atomic_file.cpp src/core/files.cpp"
  [token_file]="src/formats/token_file.cpp src/formats/atomic_file.cpp src/core/files.cpp src/batching/loader.cpp"
  [config]="src/config/config.cpp src/nn/config.cpp src/core/files.cpp"
  [runs_csv]="src/scaling/runs.cpp src/core/files.cpp"
  [metrics]="src/formats/run_folder.cpp src/formats/atomic_file.cpp src/core/files.cpp"
  [gpt2]="src/tokenizers/gpt2_bpe.cpp src/tokenizers/tokenizer.cpp src/tokenizers/spm_tokenizer.cpp
          src/core/system.cpp src/core/files.cpp src/formats/atomic_file.cpp -lsentencepiece -lsentencepiece_train"
  [spm]="src/tokenizers/spm_tokenizer.cpp src/tokenizers/tokenizer.cpp src/tokenizers/gpt2_bpe.cpp
         src/core/system.cpp src/core/files.cpp src/formats/atomic_file.cpp -lsentencepiece -lsentencepiece_train"
  [completion]="src/serve/openai_api.cpp src/tokenizers/tokenizer.cpp src/tokenizers/gpt2_bpe.cpp
                src/tokenizers/spm_tokenizer.cpp src/core/system.cpp src/core/files.cpp src/formats/atomic_file.cpp
                -lsentencepiece -lsentencepiece_train"
)
targets=(config safetensors token_file runs_csv metrics gpt2 spm completion)

build() {  # $1: target
  mkdir -p build-fuzz
  local bin=build-fuzz/fuzz_$1
  local newest
  newest=$(ls -t fuzz/fuzz_$1.cpp fuzz/fuzz_input.h $(ls src/*/*.cpp src/*/*.h) | head -1)
  if [ ! -x "$bin" ] || [ "$newest" -nt "$bin" ]; then
    clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
      -DFLOPWISE_SOURCE_DIR=\"$PWD\" -DFLOPWISE_PLUGIN_DIR=\"/nonexistent\" \
      -Isrc fuzz/fuzz_$1.cpp ${sources[$1]} -o "$bin"
  fi
}

run() {  # $1: target, $2: seconds, $3: executions (0: no limit)
  build "$1"
  mkdir -p "build-fuzz/corpus/$1"
  echo "== fuzz_$1 for $2 s${3:+ or $3 executions}"
  (cd build-fuzz && ./fuzz_$1 -max_total_time="$2" -runs="${3:--1}" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
     "corpus/$1" "../fuzz/corpus/$1" 2>&1 | grep -E "stat::number_of_executed_units|stat::peak_rss_mb|ERROR|SUMMARY|Done" ;
   exit "${PIPESTATUS[0]}")
}

command -v clang++ >/dev/null || { echo "scripts/fuzz.sh: clang++ not found (scripts/setup.sh installs it)" >&2; exit 1; }
case "${1:-}" in
  --list) printf '%s\n' "${targets[@]}" ;;
  --all) for t in "${targets[@]}"; do run "$t" "${2:-10}"; done ;;
  "") echo "usage: scripts/fuzz.sh --list | TARGET [SECONDS [RUNS]] | --all SECONDS" >&2; exit 2 ;;
  *)
    [ -n "${sources[$1]:-}" ] || { echo "scripts/fuzz.sh: no target '$1' (see --list)" >&2; exit 2; }
    run "$1" "${2:-60}" "${3:-}" ;;
esac
