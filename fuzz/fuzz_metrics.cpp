// libFuzzer target: a run folder's metrics.jsonl (one JSON object per logged step), read
// as the report, Approach 1 and a resuming trainer read it, and written back.
#include "core/error.h"
#include "formats/run_folder.h"
#include "fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = fw::fuzz::input_file(data, size, "metrics.jsonl");
  try {
    for (const auto& row : fw::read_metrics(path)) (void)fw::metrics_json(row).dump();
  } catch (const fw::Error&) {
  }
  return 0;
}
