// libFuzzer target: a run config (JSON sections "model", "train", ...), read onto the
// defaults and validated, as `train --config FILE` does.
#include "config/config.h"
#include "core/error.h"
#include "fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = fw::fuzz::input_file(data, size, "config.json");
  try {
    fw::Config c;
    fw::apply_config_file(c, path);
    c.validate();
    (void)fw::to_json(c).dump();
  } catch (const fw::Error&) {
  }
  return 0;
}
