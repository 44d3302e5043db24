// libFuzzer target: an llm.c token file (256-int header: magic, version, count; then
// uint16 ids) and the checks a loader applies to it.
#include "batching/loader.h"
#include "core/error.h"
#include "formats/token_file.h"
#include "fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = fw::fuzz::input_file(data, size, "val.bin");
  try {
    fw::TokenLoader loader(path, 50257);
    const int64_t T = 8;
    if (loader.size() > T) {
      int32_t in[T], tgt[T];
      loader.next_batch(in, tgt, 1, T);
      (void)fw::validation_windows(loader, 1 << 20, T);
    }
  } catch (const fw::Error&) {
  }
  return 0;
}
