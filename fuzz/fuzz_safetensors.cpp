// libFuzzer target: a safetensors file from a stranger (its 8-byte header length, JSON
// header, offsets, dtypes and shapes), opened and validated as a checkpoint is, then
// every tensor asked for as 16 f32 values (refused unless it is exactly that).
#include <vector>

#include "core/error.h"
#include "formats/safetensors.h"
#include "fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = fw::fuzz::input_file(data, size, "model.safetensors");
  try {
    fw::SafetensorsFile f(path);
    for (const auto& name : f.names()) {
      (void)f.metadata();
      std::vector<float> out(16);
      try {
        f.read_f32(name, {16}, out.data());
      } catch (const fw::Error&) {
      }
    }
  } catch (const fw::Error&) {
  }
  return 0;
}
